"""Window-attention (Swin-style) meta-encoder."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...registry import register_model
from ...utils.validation import check_int
from .base import BaseMetaEncoder

__all__ = ['TransformerMetaEncoder']


def _window_partition(x: Tensor, wh: int, ww: int) -> Tensor:
    """``(B, H, W, C)`` -> ``(B, nW, wh * ww, C)`` (H, W divisible by the window)."""
    b, h, w, c = x.shape
    x = x.view(b, h // wh, wh, w // ww, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // wh) * (w // ww), wh * ww, c)


def _window_merge(x: Tensor, h: int, w: int, wh: int, ww: int) -> Tensor:
    """Inverse of :func:`_window_partition`."""
    b, _, _, c = x.shape
    x = x.view(b, h // wh, w // ww, wh, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


class _WindowAttentionBlock(nn.Module):
    """Pre-norm block: windowed multi-head self-attention + MLP, both residual.

    Maps whose size is not a multiple of the window are zero-padded; padded positions are
    masked out of the attention of real positions. With ``shift`` the windows are displaced by
    half a window (cyclic roll, Swin), and positions that only became neighbours through the
    roll are masked. A dimension no larger than the window uses a single window and no shift.
    """

    def __init__(self, channels: int, num_heads: int, head_dim: int, window_size: int,
                 shift: bool, mlp_ratio: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.window_size = window_size
        self.shift = shift
        self._mask_cache = {}
        inner = num_heads * head_dim
        self.norm1 = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * inner)
        self.proj = nn.Linear(inner, channels)
        self.norm2 = nn.LayerNorm(channels)
        hidden = max(1, int(round(channels * mlp_ratio)))
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden), nn.GELU(), nn.Linear(hidden, channels))

    def _geometry(self, size: int) -> Tuple[int, int, int]:
        """Window, shift and padded size along one dimension."""
        win = min(self.window_size, size)
        shift = win // 2 if (self.shift and size > win) else 0
        padded = -(-size // win) * win
        return win, shift, padded

    def _mask(self, h: int, w: int, geo_h, geo_w, device) -> Tensor:
        """Boolean ``(nW, L, L)`` mask, True where attention is allowed."""
        (wh, sh, hp), (ww, sw, wp) = geo_h, geo_w
        # Regions in *rolled* coordinates: the last window row/column holds positions from both
        # ends of the map, which were not neighbours before the roll (Swin).
        region = torch.zeros(hp, wp, dtype=torch.long, device=device)
        for i, hs in enumerate(self._slices(hp, wh, sh)):
            for j, ws in enumerate(self._slices(wp, ww, sw)):
                region[hs, ws] = 3 * i + j
        # Padding is defined in original coordinates, so it is rolled like the map.
        pad = torch.ones(hp, wp, dtype=torch.long, device=device)
        pad[:h, :w] = 0
        pad = torch.roll(pad, shifts=(-sh, -sw), dims=(0, 1))
        ids = region * 2 + pad  # padding never mixes with real positions
        ids = _window_partition(ids[None, :, :, None], wh, ww)[0, :, :, 0]  # (nW, L)
        return ids[:, :, None] == ids[:, None, :]

    @staticmethod
    def _slices(size: int, win: int, shift: int):
        if shift == 0:
            return [slice(0, size)]
        return [slice(0, size - win), slice(size - win, size - shift), slice(size - shift, size)]

    def _attention(self, x: Tensor) -> Tensor:
        b, h, w, c = x.shape
        geo_h, geo_w = self._geometry(h), self._geometry(w)
        (wh, sh, hp), (ww, sw, wp) = geo_h, geo_w
        if hp != h or wp != w:
            x = F.pad(x, (0, 0, 0, wp - w, 0, hp - h))
        if sh or sw:
            x = torch.roll(x, shifts=(-sh, -sw), dims=(1, 2))
        win = _window_partition(x, wh, ww)  # (B, nW, L, C)
        nw, length = win.shape[1], win.shape[2]
        qkv = self.qkv(win).view(b, nw, length, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).unbind(0)  # each (B, nW, heads, L, d)
        mask = None
        if sh or sw or hp != h or wp != w:
            # The mask depends only on the map size: build it once per size (N steps reuse it).
            key = (h, w, str(x.device))
            if key not in self._mask_cache:
                self._mask_cache[key] = self._mask(h, w, geo_h, geo_w, x.device)
            mask = self._mask_cache[key][None, :, None]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        out = self.proj(out.transpose(2, 3).reshape(b, nw, length, -1))
        out = _window_merge(out, hp, wp, wh, ww)
        if sh or sw:
            out = torch.roll(out, shifts=(sh, sw), dims=(1, 2))
        return out[:, :h, :w]

    def forward(self, x: Tensor) -> Tensor:
        x = x + self._attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


@register_model()
class TransformerMetaEncoder(BaseMetaEncoder):
    """Window self-attention blocks on the map, then a linear output layer.

    Args:
        in_channels: channels of ``x`` (kept).
        num_heads: attention heads.
        head_dim: channels per head (attention width is ``num_heads * head_dim``).
        window_size: side of the square attention windows.
        num_blocks: number of attention blocks.
        shift: use shifted windows. A single block is then shifted; with several blocks the
            odd ones are (regular / shifted alternation as in Swin).
        mlp_ratio: hidden width of the block MLP relative to ``in_channels``.
        time_embed_dim: sinusoidal features of the time embedding (None: ``in_channels``).
        zero_init_out: zero-initialise the output layer (initial velocity 0).
    """

    short_name = 'transformer'

    def __init__(self,
                 in_channels: int,
                 num_heads: int = 4,
                 head_dim: int = 64,
                 window_size: int = 7,
                 num_blocks: int = 1,
                 shift: bool = True,
                 mlp_ratio: float = 2.0,
                 time_embed_dim: Optional[int] = 128,
                 zero_init_out: bool = True) -> None:
        super().__init__(in_channels, time_embed_dim, zero_init_out)
        for name, value in (('num_heads', num_heads), ('head_dim', head_dim),
                            ('window_size', window_size), ('num_blocks', num_blocks)):
            check_int(value, name, owner='TransformerMetaEncoder')
        self.blocks = nn.ModuleList([
            _WindowAttentionBlock(in_channels, num_heads, head_dim, window_size,
                                  shift and (num_blocks == 1 or i % 2 == 1), mlp_ratio)
            for i in range(num_blocks)
        ])
        self.norm_out = nn.LayerNorm(in_channels)
        self.out = nn.Linear(in_channels, in_channels)
        self.init_weights()

    def velocity(self, h: Tensor) -> Tensor:
        x = h.permute(0, 2, 3, 1)  # channels last for attention
        for block in self.blocks:
            x = block(x)
        return self.out(self.norm_out(x)).permute(0, 3, 1, 2)

    def output_layer(self) -> nn.Module:
        return self.out
