import pytest
import torch
import torch.nn.functional as F
from mmrazor.registry import MODELS
from torch import nn

from fmkt_plugin.models.meta_encoders import (
    ConvMetaEncoder,
    LinearMetaEncoder,
    MLPMetaEncoder,
    SinusoidalTimeEmbedding,
    TransformerMetaEncoder,
)
from fmkt_plugin.models.meta_encoders.transformer import _WindowAttentionBlock

C = 8
ENCODERS = {
    'linear': lambda **kw: LinearMetaEncoder(C, time_embed_dim=16, **kw),
    'mlp1': lambda **kw: MLPMetaEncoder(C, num_blocks=1, time_embed_dim=16, **kw),
    'mlp2': lambda **kw: MLPMetaEncoder(C, num_blocks=2, hidden_channels=12, time_embed_dim=16,
                                        **kw),
    'conv-plain': lambda **kw: ConvMetaEncoder(C, 'plain', time_embed_dim=16, **kw),
    'conv-mobile': lambda **kw: ConvMetaEncoder(C, 'mobile', time_embed_dim=16, **kw),
    'conv-residual': lambda **kw: ConvMetaEncoder(C, 'residual', time_embed_dim=16, **kw),
    'transformer': lambda **kw: TransformerMetaEncoder(C, num_heads=2, head_dim=4, window_size=3,
                                                       time_embed_dim=16, **kw),
    'transformer-2blocks': lambda **kw: TransformerMetaEncoder(
        C, num_heads=2, head_dim=4, window_size=3, num_blocks=2, time_embed_dim=16, **kw),
}


def test_time_embedding_values_and_shapes():
    emb = SinusoidalTimeEmbedding(8)
    out = emb(torch.tensor([0.0, 0.5]))
    assert out.shape == (2, 8)
    torch.testing.assert_close(out[0], torch.tensor([0.] * 4 + [1.] * 4))
    # Frequencies run from time_scale down geometrically: first feature is sin(1000 t).
    assert out[1, 0].item() == pytest.approx(torch.sin(torch.tensor(500.0)).item(), abs=1e-4)
    assert emb(0.3, batch_size=5).shape == (5, 8)
    assert not torch.allclose(emb(0.125), emb(0.25))
    assert SinusoidalTimeEmbedding(8, out_channels=3)(torch.rand(4)).shape == (4, 3)
    with pytest.raises(ValueError, match='embed_dim'):
        SinusoidalTimeEmbedding(7)


@pytest.mark.parametrize('name', sorted(ENCODERS))
@pytest.mark.parametrize('shape', [(3, C), (3, C, 5, 4)])
def test_shape_channels_and_time_dependence(name, shape):
    torch.manual_seed(0)
    enc = ENCODERS[name](zero_init_out=False)
    x = torch.randn(shape)
    v1 = enc(x, torch.full((3, ), 0.25))
    assert v1.shape == x.shape and torch.isfinite(v1).all()
    assert v1.abs().sum() > 0
    # The time is an input: other t, other velocity; a scalar t equals a constant (B,) t.
    assert not torch.allclose(v1, enc(x, torch.full((3, ), 0.75)))
    torch.testing.assert_close(enc(x, 0.25), v1)


@pytest.mark.parametrize('name', sorted(ENCODERS))
def test_vectors_are_one_by_one_maps(name):
    torch.manual_seed(0)
    enc = ENCODERS[name](zero_init_out=False)
    x, t = torch.randn(2, C), torch.tensor([0.1, 0.9])
    torch.testing.assert_close(enc(x, t), enc(x[:, :, None, None], t).flatten(1))


@pytest.mark.parametrize('name', sorted(ENCODERS))
def test_tokens_are_a_map_of_the_sequence(name):
    """(B, L, C) tokens (a ViT's, channels last) are a (B, C, L, 1) map of the sequence, and the
    velocity comes back as tokens; a pointwise encoder acts on each token alone."""
    torch.manual_seed(0)
    enc = ENCODERS[name](zero_init_out=False)
    x, t = torch.randn(2, 17, C), torch.tensor([0.1, 0.9])
    v = enc(x, t)
    assert v.shape == x.shape
    as_map = enc(x.transpose(1, 2)[..., None], t)[..., 0].transpose(1, 2)
    torch.testing.assert_close(v, as_map)
    if name in ('linear', 'mlp1', 'mlp2'):
        per_token = enc(x.reshape(-1, C), t.repeat_interleave(17)).reshape(2, 17, C)
        torch.testing.assert_close(v, per_token)
    with pytest.raises(ValueError, match=r'expected 8 channels, got 17 \(tokens are'):
        enc(x.transpose(1, 2), t)
    with pytest.raises(ValueError, match=r'or \(B, L, C\) tokens, got shape \(2, 3, 4, 5, 6\)'):
        enc(torch.zeros(2, 3, 4, 5, 6), t)


@pytest.mark.parametrize('name', sorted(ENCODERS))
def test_zero_init_gives_zero_velocity_but_trains(name):
    torch.manual_seed(0)
    enc = ENCODERS[name]()
    x = torch.randn(4, C, 3, 3)
    v = enc(x, torch.rand(4))
    assert torch.equal(v, torch.zeros_like(v))
    target = torch.randn_like(x)
    F.mse_loss(v, target).backward()
    out_w = enc.output_layer().weight
    assert out_w.grad.abs().sum() > 0  # the zero layer itself gets a gradient
    earlier = [p for n, p in enc.named_parameters() if p is not out_w and 'bias' not in n]
    # ... earlier layers only see it through the (still zero) output layer ...
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in earlier)
    # ... and after one update they receive gradients too.
    opt = torch.optim.SGD(enc.parameters(), lr=0.1)
    opt.step()
    opt.zero_grad()
    F.mse_loss(enc(x, torch.rand(4)), target).backward()
    assert sum(p.grad.abs().sum() > 0 for p in earlier) == len(earlier)


def test_zero_init_survives_mmengine_init_cfg():
    from mmengine.model import BaseModule

    class Wrapper(BaseModule):

        def __init__(self):
            super().__init__(init_cfg=dict(type='Normal', layer=['Conv2d', 'Linear'], std=1.0))
            self.enc = MLPMetaEncoder(C, time_embed_dim=16)

    model = Wrapper()
    model.init_weights()
    assert model.enc.blocks[0].fc1.weight.std() > 0.5  # the init_cfg did run
    assert torch.equal(model.enc.out.weight, torch.zeros_like(model.enc.out.weight))


def test_registered_and_buildable():
    enc = MODELS.build(
        dict(_scope_='mmrazor', type='ConvMetaEncoder', in_channels=4, variant='mobile'))
    assert isinstance(enc, ConvMetaEncoder)
    assert MODELS.get('TransformerMetaEncoder') is TransformerMetaEncoder


def test_mobile_variant_is_cheaper():
    n_params = {v: sum(p.numel() for p in ConvMetaEncoder(64, v).body.parameters())
                for v in ('plain', 'mobile')}
    assert n_params['mobile'] < n_params['plain'] / 5


@pytest.mark.parametrize('kwargs, match', [
    (dict(in_channels=0), 'in_channels'),
    (dict(in_channels=4, num_blocks=0), 'num_blocks'),
])
def test_mlp_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLPMetaEncoder(**kwargs)


def test_conv_and_transformer_bad_config():
    with pytest.raises(ValueError, match='variant'):
        ConvMetaEncoder(4, variant='dense')
    with pytest.raises(ValueError, match='window_size'):
        TransformerMetaEncoder(4, window_size=0)
    with pytest.raises(ValueError, match='channels'):
        MLPMetaEncoder(4)(torch.randn(2, 5), 0.5)


def _reference_window_attention(block, x, shift):
    """Full attention where two real positions interact iff they share a shifted window.

    After the cyclic roll by -s and masking of wrapped regions, windows in original coordinates
    are the tiling with offset s: position i belongs to window floor((i - s) / win).
    """
    b, h, w, c = x.shape
    ids = []
    for size in (h, w):
        win = min(block.window_size, size)
        s = win // 2 if (shift and size > win) else 0
        ids.append(torch.div(torch.arange(size) - s, win, rounding_mode='floor'))
    wid = (ids[0][:, None] * 1000 + ids[1][None, :]).reshape(-1)
    mask = wid[:, None] == wid[None, :]
    qkv = block.qkv(x.reshape(b, h * w, c)).view(b, h * w, 3, block.num_heads, block.head_dim)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return block.proj(out.transpose(1, 2).reshape(b, h * w, -1)).view(b, h, w, c)


@pytest.mark.parametrize('shift', [False, True])
@pytest.mark.parametrize('size', [(5, 6), (7, 7), (2, 3)])
def test_window_attention_matches_reference(shift, size):
    torch.manual_seed(0)
    block = _WindowAttentionBlock(C, num_heads=2, head_dim=4, window_size=3, shift=shift,
                                  mlp_ratio=1.0)
    x = torch.randn(2, *size, C)
    torch.testing.assert_close(block._attention(x), _reference_window_attention(block, x, shift),
                               atol=1e-5, rtol=1e-5)


def test_windows_are_local_and_shift_connects_them():
    torch.manual_seed(0)
    x = torch.randn(1, 6, 6, C)
    x1 = x.clone()
    x1[0, 1, 1] += 1.0
    # window 3 on a 6x6 map: plain windows [0, 3), [3, 6); shifted by 1: [0, 1), [1, 4), [4, 6).
    plain = _WindowAttentionBlock(C, 2, 4, window_size=3, shift=False, mlp_ratio=1.0)
    diff = (plain._attention(x1) - plain._attention(x)).abs().sum(-1)[0]
    assert diff[0, 0] > 0 and diff[2, 2] > 0 and diff[3, 3] == 0
    shifted = _WindowAttentionBlock(C, 2, 4, window_size=3, shift=True, mlp_ratio=1.0)
    shifted.load_state_dict(plain.state_dict())
    diff = (shifted._attention(x1) - shifted._attention(x)).abs().sum(-1)[0]
    assert diff[3, 3] > 0 and diff[0, 0] == 0 and diff[4, 4] == 0


def test_transformer_is_cheap_and_configurable():
    enc = TransformerMetaEncoder(16, num_heads=3, head_dim=5, window_size=2, shift=False)
    assert enc.blocks[0].qkv.out_features == 3 * 3 * 5
    assert not enc.blocks[0].shift
    assert isinstance(enc.out, nn.Linear)


def test_only_the_linear_encoder_is_affine():
    """affine=True must mean v(a x1 + b x2, t) = a v(x1, t) + b v(x2, t) - (a + b - 1) v(0, t)."""
    torch.manual_seed(0)
    x1, x2, t = torch.randn(3, C), torch.randn(3, C), torch.rand(3)
    zero = torch.zeros(3, C)
    for name, make in ENCODERS.items():
        enc = make(zero_init_out=False)
        mixed = enc(2.0 * x1 - 0.5 * x2, t)
        affine_mix = 2.0 * enc(x1, t) - 0.5 * enc(x2, t) - 0.5 * enc(zero, t)
        assert enc.affine == torch.allclose(mixed, affine_mix, atol=1e-5), name
    assert LinearMetaEncoder.affine and not MLPMetaEncoder.affine
    assert MODELS.build(dict(_scope_='mmrazor', type='LinearMetaEncoder', in_channels=4)).affine


@pytest.mark.parametrize('name', sorted(ENCODERS))
@pytest.mark.parametrize('shape', [(3, C), (3, C, 5, 4)])
def test_time_grid_binding_equals_per_step_calls(name, shape):
    """on_time_grid embeds all times in one call; each step gives what a (B,) time gives, and
    the gradients (time-embedding MLP included) agree."""
    torch.manual_seed(0)
    enc = ENCODERS[name](zero_init_out=False)
    x = torch.randn(shape)
    times = [1.0, 0.75, 0.5, 0.25]
    calls = []
    enc.time_embed.register_forward_hook(lambda *a: calls.append(1))
    velocity = enc.on_time_grid(times + [0.5], x)  # a repeated time is embedded once
    assert len(calls) == 1
    for t in times:
        fast, ref = velocity(x, t), enc(x, torch.full((3, ), t))
        torch.testing.assert_close(fast, ref)
        g_fast = torch.autograd.grad(fast.pow(2).sum(), list(enc.parameters()),
                                     allow_unused=True, retain_graph=True)  # shared embedding
        g_ref = torch.autograd.grad(ref.pow(2).sum(), list(enc.parameters()), allow_unused=True)
        for a, b in zip(g_fast, g_ref):
            assert (a is None) == (b is None)
            if a is not None:
                torch.testing.assert_close(a, b)
    assert len(calls) == 1 + len(times)  # only the reference calls embedded again
    # a time off the grid is embedded on the fly
    torch.testing.assert_close(velocity(x, 0.1), enc(x, 0.1))


def test_time_grid_binding_evaluates_through_the_given_callable():
    """``call`` (a compiled wrapper in a flow) evaluates every step, with the embedding row."""
    enc = ENCODERS['mlp1'](zero_init_out=False)
    seen = []

    def call(x, t, time_embedding=None):
        seen.append((t, None if time_embedding is None else tuple(time_embedding.shape)))
        return enc(x, t, time_embedding=time_embedding)

    velocity = enc.on_time_grid([1.0, 0.5], torch.zeros(2, C), call=call)
    velocity(torch.randn(2, C), 0.5)
    velocity(torch.randn(2, C), 0.3)  # off the grid: a (B,) time, no row
    assert seen[0] == (None, (1, C))  # no float time reaches the callable (compile guards)
    assert seen[1][1] is None and seen[1][0].shape == (2, )


def _authors_velocity(encoder, x, t):
    """The FM-KT authors' velocity, written from their formulas with plain torch ops: a
    sinusoid of the raw t with C features ordered [cos, sin], Linear-ReLU-Linear, added to x;
    then blocks LN(h + W2 relu(W1 h)) without biases; no output layer."""
    import math
    C = x.shape[1]
    half = C // 2
    # the frequencies in float32, as both codes compute them
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half).double()
    args = torch.full((x.shape[0], 1), t, dtype=torch.float64) * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    l1, l2 = encoder.time_embed.mlp[0], encoder.time_embed.mlp[2]
    emb = torch.relu(emb @ l1.weight.T + l1.bias) @ l2.weight.T + l2.bias
    h = x + emb[:, :, None, None]
    for block in encoder.blocks:
        w1, w2 = block.fc1.weight[:, :, 0, 0], block.fc2.weight[:, :, 0, 0]
        inner = torch.einsum('oc,bchw->bohw', w1, h).relu()
        h = h + torch.einsum('co,bohw->bchw', w2, inner)
        mean = h.mean(dim=1, keepdim=True)
        var = h.var(dim=1, unbiased=False, keepdim=True)
        h = (h - mean) / torch.sqrt(var + block.norm.eps)
        h = h * block.norm.weight[None, :, None, None] + block.norm.bias[None, :, None, None]
    return h


AUTHORS = dict(num_blocks=2, time_embed_dim=16, zero_init_out=False, block='authors',
               time_embed=dict(time_scale=1, order='cos_sin', activation='relu'))


@pytest.mark.parametrize('t', [1.0, 0.5, 0.125])
def test_mlp_encoder_authors_form_matches_their_formulas_to_1e12(t):
    from fmkt_plugin.models.meta_encoders import MLPMetaEncoder
    torch.manual_seed(0)
    enc = MLPMetaEncoder(16, **AUTHORS).double()
    with torch.no_grad():  # non-trivial LayerNorm affine parameters
        for block in enc.blocks:
            block.norm.weight.uniform_(0.5, 1.5)
            block.norm.bias.normal_()
    x = torch.randn(3, 16, 2, 2, dtype=torch.float64, requires_grad=True)
    got, want = enc(x, t), _authors_velocity(enc, x, t)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    g_got = torch.autograd.grad(got.square().sum(), [x] + list(enc.parameters()))
    g_want = torch.autograd.grad(want.square().sum(), [x] + list(enc.parameters()))
    for a, b in zip(g_got, g_want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # a pooled vector is the 1x1 map
    v = torch.randn(3, 16, dtype=torch.float64)
    want_v = _authors_velocity(enc, v[:, :, None, None], t)[:, :, 0, 0]
    torch.testing.assert_close(enc(v, t), want_v,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('switch', [
    dict(block='prenorm', zero_init_out=False),
    dict(time_embed=dict(time_scale=1000, order='cos_sin', activation='relu')),
    dict(time_embed=dict(time_scale=1, order='sin_cos', activation='relu')),
    dict(time_embed=dict(time_scale=1, order='cos_sin', activation='silu')),
])
def test_each_authors_option_switched_back_changes_the_velocity(switch):
    from fmkt_plugin.models.meta_encoders import MLPMetaEncoder
    torch.manual_seed(0)
    enc = MLPMetaEncoder(16, **dict(AUTHORS, **switch)).double()
    x = torch.randn(3, 16, 2, 2, dtype=torch.float64)
    reference = MLPMetaEncoder(16, **AUTHORS).double()
    reference.load_state_dict(enc.state_dict(), strict=False)
    if switch.get('block') == 'prenorm':
        assert enc(x, 0.5).shape == x.shape  # another form: no weights to share, just differs
        assert not torch.allclose(enc(x, 0.5), _authors_velocity(reference, x, 0.5))
    else:
        assert (enc(x, 0.5) - _authors_velocity(enc, x, 0.5)).abs().max() > 1e-6


def test_authors_block_refuses_a_zero_initialised_output():
    from fmkt_plugin.models.meta_encoders import MLPMetaEncoder
    with pytest.raises(ValueError, match="block='authors' has no output layer"):
        MLPMetaEncoder(16, block='authors')
    with pytest.raises(ValueError, match="order must be 'sin_cos' or 'cos_sin'"):
        MLPMetaEncoder(16, time_embed=dict(order='cos'))
    with pytest.raises(ValueError, match='time_embed takes'):
        MLPMetaEncoder(16, time_embed=dict(scale=1))
