"""NKD (rivals/nkd) against the formulas of its authors' loss (yzd-v/cls_KD,
mmcls/models/dis_losses/nkd.py), written here with plain torch ops: loss and gradients agree to
1e-12 in float64; mixed labels, the teacher's detachment and bad inputs."""
import pytest
import torch
import torch.nn.functional as F

from fmkt_plugin.rivals.nkd import NKDLoss

B, K = 6, 10


def authors_nkd(s, t, labels, temp, gamma):
    """Their loss: the target term -mean(q_y log p_y), then the non-target distributions (the
    label's logit removed) at temperature T, weighted -gamma T^2."""
    n, c = s.shape
    label = labels.view(n, 1)
    s_t = torch.gather(F.log_softmax(s, dim=1), 1, label)
    t_t = torch.gather(F.softmax(t, dim=1), 1, label).detach()
    loss_t = -(t_t * s_t).mean()
    keep = torch.ones_like(s).scatter_(1, label, 0).bool()
    s_n = F.log_softmax(s[keep].reshape(n, -1) / temp, dim=1)
    t_n = F.softmax(t[keep].reshape(n, -1) / temp, dim=1)
    return loss_t - gamma * temp**2 * (t_n * s_n).sum(dim=1).mean()


@pytest.mark.parametrize('tau,gamma', [(1.0, 1.0), (1.0, 1.5), (4.0, 1.0), (0.5, 0.0)])
def test_nkd_matches_the_authors_formulas(tau, gamma):
    gen = torch.Generator().manual_seed(0)
    s = (torch.randn(B, K, generator=gen, dtype=torch.float64) * 3).requires_grad_()
    t = torch.randn(B, K, generator=gen, dtype=torch.float64) * 3
    labels = torch.randint(0, K, (B, ), generator=gen)
    ours = NKDLoss(tau=tau, gamma=gamma, loss_weight=0.7)(s, t, labels)
    (grad_ours, ) = torch.autograd.grad(ours, s)
    ref = 0.7 * authors_nkd(s, t, labels, tau, gamma)
    (grad_ref, ) = torch.autograd.grad(ref, s)
    assert ours.dtype == torch.float64
    assert abs(float(ours - ref)) < 1e-12
    assert torch.allclose(grad_ours, grad_ref, atol=1e-12, rtol=0)
    # the terms matter: another gamma (or temperature) gives another loss
    other = NKDLoss(tau=tau, gamma=gamma + 0.5)(s, t, labels) * 0.7
    assert abs(float(other - ours)) > 1e-6


def test_nkd_takes_the_largest_score_of_mixed_labels_and_detaches_the_teacher():
    gen = torch.Generator().manual_seed(1)
    s = torch.randn(B, K, generator=gen, requires_grad=True)
    t = torch.randn(B, K, generator=gen, requires_grad=True)
    labels = torch.randint(0, K, (B, ), generator=gen)
    scores = F.one_hot(labels, K).float() * 0.6 + 0.4 / K  # mixup-like soft labels
    loss = NKDLoss()
    assert torch.allclose(loss(s, t, scores), loss(s, t, labels))
    loss(s, t, labels).backward()
    assert t.grad is None and s.grad is not None and float(s.grad.abs().sum()) > 0


def test_nkd_non_target_term_is_least_at_the_teachers_non_target_distribution():
    """The gamma term is the cross-entropy of the renormalised non-target distributions: a
    student whose non-target logits are the teacher's (its target logit anything) scores the
    least of it."""
    gen = torch.Generator().manual_seed(2)
    t = torch.randn(B, K, generator=gen) * 2
    labels = torch.randint(0, K, (B, ), generator=gen)

    def non_target(s):
        return NKDLoss(gamma=1.0)(s, t, labels) - NKDLoss(gamma=0.0)(s, t, labels)

    matched = t.clone()
    matched[torch.arange(B), labels] += 5.0  # the target logit does not enter the term
    for _ in range(5):
        other = t + torch.randn(B, K, generator=gen)
        assert float(non_target(other)) > float(non_target(matched)) + 1e-4


def test_nkd_refuses_bad_inputs_by_name():
    loss = NKDLoss()
    with pytest.raises(ValueError, match='NKDLoss: preds_S and preds_T'):
        loss(torch.zeros(B, K), torch.zeros(B, K + 1), torch.zeros(B, dtype=torch.long))
    with pytest.raises(ValueError, match='NKDLoss: gt_labels holds 5 labels'):
        loss(torch.zeros(B, K), torch.zeros(B, K), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match='tau'):
        NKDLoss(tau=0)
    with pytest.raises(ValueError, match='gamma'):
        NKDLoss(gamma=-1)
