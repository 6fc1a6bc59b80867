"""ViTKD (rivals/vitkd) against the formulas of its authors' loss (yzd-v/cls_KD,
mmcls/models/dis_losses/vitkd.py), written here with plain torch ops on shared weights and the
same random draw: loss and every gradient agree to 1e-12 in float64."""
import pytest
import torch
import torch.nn.functional as F

from fmkt_plugin.rivals.vitkd import ViTKDLoss

B, N, DS, DT = 3, 16, 6, 10  # batch, patch tokens (4 x 4), student and teacher widths


def authors_vitkd(p, low_s, high_s, low_t, high_t, alpha, beta, lam):
    """Their loss: low (B, 2, N, D) and high (B, N, D) patch tokens (class token dropped)."""
    if 'low_w' in p:
        low = torch.stack([F.linear(low_s[:, i], p['low_w'][i], p['low_b'][i])
                           for i in range(2)], 1)
        high = F.linear(high_s, p['high_w'], p['high_b'])
    else:
        low, high = low_s, high_s
    loss_lr = ((low - low_t)**2).sum() / low_s.shape[0] * alpha
    b, n, d = high.shape
    keep = int(n * (1 - lam))
    noise = torch.rand(b, n)
    shuffle = torch.argsort(noise, dim=1)
    restore = torch.argsort(shuffle, dim=1)
    kept = torch.gather(high, 1, shuffle[:, :keep, None].repeat(1, 1, d))
    mask = torch.ones(b, n, dtype=high.dtype)
    mask[:, :keep] = 0
    mask = torch.gather(mask, 1, restore)
    x = torch.cat([kept, p['mask_token'].repeat(b, n - keep, 1)], 1)
    x = torch.gather(x, 1, restore[..., None].repeat(1, 1, d))
    side = int(n**0.5)
    x = x.reshape(b, side, side, d).permute(0, 3, 1, 2)
    x = F.conv2d(F.relu(F.conv2d(x, p['g1_w'], p['g1_b'], padding=1)), p['g2_w'], p['g2_b'],
                 padding=1).flatten(2).transpose(1, 2)
    loss_gen = ((x * mask[..., None] - high_t * mask[..., None])**2).sum()
    return loss_lr + loss_gen / b * beta / lam


def _params(loss):
    p = dict(mask_token=loss.mask_token, g1_w=loss.generation[0].weight,
             g1_b=loss.generation[0].bias, g2_w=loss.generation[2].weight,
             g2_b=loss.generation[2].bias)
    if loss.low_align is not None:
        p.update(low_w=[m.weight for m in loss.low_align], low_b=[m.bias for m in loss.low_align],
                 high_w=loss.high_align.weight, high_b=loss.high_align.bias)
    return p


def _flat(p):
    return [t for v in p.values() for t in (v if isinstance(v, list) else [v])]


@pytest.mark.parametrize('dims', [(DS, DT), (DT, DT)], ids=['aligned', 'same-width'])
@pytest.mark.parametrize('ratio', [0.5, 0.25])
def test_vitkd_matches_the_authors_formulas(dims, ratio):
    ds, dt = dims
    torch.manual_seed(0)
    loss = ViTKDLoss(ds, dt, alpha=3e-2, beta=3e-3, ratio=ratio).double()
    for param in loss.parameters():
        torch.nn.init.normal_(param, std=0.3)
    gen = torch.Generator().manual_seed(1)

    def tokens(d):  # a record of a layer: class token first
        return torch.randn(B, 1 + N, d, generator=gen, dtype=torch.float64, requires_grad=True)

    s = [tokens(ds) for _ in range(3)]
    t = [tokens(dt).detach() for _ in range(3)]
    torch.manual_seed(9)
    ours = loss(*s, *t)
    p = _params(loss)
    ref_p = {k: ([v.detach().clone().requires_grad_() for v in val] if isinstance(val, list)
                 else val.detach().clone().requires_grad_()) for k, val in p.items()}
    ref_s = [x.detach().clone().requires_grad_() for x in s]
    torch.manual_seed(9)
    theirs = authors_vitkd(ref_p, torch.stack([ref_s[0][:, 1:], ref_s[1][:, 1:]], 1),
                           ref_s[2][:, 1:], torch.stack([t[0][:, 1:], t[1][:, 1:]], 1),
                           t[2][:, 1:], 3e-2, 3e-3, ratio)
    assert abs(ours.item() - theirs.item()) < 1e-12 and ours.item() > 1e-3
    grads = torch.autograd.grad(ours, s + _flat(p))
    ref_grads = torch.autograd.grad(theirs, ref_s + _flat(ref_p))
    assert max((a - b).abs().max().item() for a, b in zip(grads, ref_grads)) < 1e-12
    assert p['mask_token'] is loss.mask_token and grads[3].abs().sum() > 0  # mask token trains


def test_only_the_masked_tokens_are_generated_and_half_is_masked():
    loss = ViTKDLoss(4, 4, ratio=0.5)
    keep, mask = loss.masking(5, 16, torch.device('cpu'))
    assert keep.shape == (5, 8) and mask.sum(1).tolist() == [8.0] * 5
    assert torch.equal(mask.gather(1, keep), torch.zeros(5, 8))
    # a teacher equal to the generated tokens at the masked positions, anything elsewhere
    s, t = torch.randn(2, 17, 4), torch.randn(2, 17, 4)
    torch.manual_seed(3)
    base = loss.generate(s, t)
    torch.manual_seed(3)
    keep, mask = loss.masking(2, 16, torch.device('cpu'))
    t2 = t.clone()
    t2[:, 1:][mask == 0] += 100.0  # the kept positions are not scored
    torch.manual_seed(3)
    assert torch.allclose(loss.generate(s, t2), base)


@pytest.mark.parametrize('shapes, match', [
    (((2, 16, 4), ), r'the low layer 0 has \(2, 15\) .* and \(2, 16\) in the teacher'),
    (((4, 5), ), r'student low layer 0 must be \(B, 1 \+ N, D\)'),
    (((2, 1, 4), ), r'student low layer 0 must be'),
    (((2, 1 + 15, 4), ) * 3, 'not a square grid'),
])
def test_bad_tokens_are_named(shapes, match):
    loss = ViTKDLoss(4, 4)
    good = torch.randn(2, 17, 4)
    args = [torch.randn(*shapes[i]) if i < len(shapes) else good for i in range(3)]
    if len(shapes) == 3:  # bad everywhere: the low layers pass (any N), the high one fails
        args = [torch.randn(*s) for s in shapes]
        args += [a.clone() for a in args]
    else:
        args += [good.clone() for _ in range(3)]
    with pytest.raises(ValueError, match=match):
        loss(*args)


def test_settings_are_checked_by_name():
    with pytest.raises(ValueError, match='ratio'):
        ViTKDLoss(4, 4, ratio=0)
    with pytest.raises(ValueError, match='student_dims'):
        ViTKDLoss(0, 4)
