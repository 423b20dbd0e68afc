"""SwinIR: shifted-window transformer for super-resolution.

Liang et al. 2021, "SwinIR: Image Restoration Using Swin Transformer" (ICCV
workshops), built on the Swin Transformer of Liu et al. 2021: a 3×3 convolution
(shallow feature extraction), ``depth`` residual Swin transformer blocks (RSTB:
``blocks`` Swin layers whose windows alternate between unshifted and shifted by half
a window, then a 3×3 convolution and a skip, SwinIR eq. 5–6), a layer norm, a 3×3
convolution and the long skip (eq. 3), and the pixel-shuffle upsampler of the
lightweight SwinIR (one 3×3 convolution to ``channels · scale²`` and
PixelShuffle, Shi et al. 2016), so every layer runs on the LR grid. As for the other
families, the network predicts the residual to a bilinear upsampling of the input.

A Swin layer (Liu et al. 2021, eq. 3) is
``z = x + W-MSA(LN(x)); x' = z + MLP(LN(z))``, the multi-head self-attention taken
within non-overlapping ``window × window`` windows, with a learned relative position
bias B (their eq. 4: softmax(QKᵀ/√d + B)V, B read from a table of
(2·window − 1)² entries per head). In the shifted layers the feature map is rolled by
half a window (the cyclic shift of Liu et al. 2021, §3.2) and an attention mask
keeps tokens from attending across the seams of the roll.

Any field size: the LR input is padded (replicate) to a multiple of the window and
the output cropped back. Attention is written as two matrix products (not
``scaled_dot_product_attention``) so torch's FLOP counter counts it on every device.

Size: ``width`` is the embedding dimension C, ``depth`` the number of RSTBs,
``heads`` the attention heads (default max(1, C // 8), heads of 8 channels; must
divide C), ``blocks`` Swin layers per RSTB (default 2), ``window`` (default 8)
and ``mlp_ratio`` (default 2, as in lightweight SwinIR).

``qk_norm``: queries and keys are layer-normalised (over each head's channels, with a
learned scale and bias) before their dot product — qk-layernorm (Dehghani et al. 2023;
Wortsman et al. 2023, §3.1), which keeps attention logits from growing with the
learning rate and so widens the range of rates that train. It adds 4·C/h parameters to
each attention (two LayerNorms of C/h channels).

Parameters (C width, h heads, w window, r = mlp hidden/C, b blocks, d depth,
C_in/C_out channels, s scale): N = (9 C_in C + C) + 2C
+ d·[b·(4C + (2w−1)² h + 3C² + 3C + C² + C + 2rC² + rC + C) + 9C² + C] + 2C
+ (9C² + C) + (9 C C_out s² + C_out s²).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scalelab._errors import ScalelabError


def relative_position_index(window: int) -> torch.Tensor:
    """Index into the (2w − 1)² bias table for every pair of tokens of a window, (w², w²)."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window),
                                        indexing="ij")).flatten(1)  # (2, w²)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[..., 0] * (2 * window - 1) + rel[..., 1]


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) → (B · nW, w², C), windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """(B · nW, w², C) → (B, H, W, C)."""
    c = windows.shape[-1]
    x = windows.view(-1, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def shifted_window_mask(h: int, w: int, window: int, shift: int,
                        device=None) -> torch.Tensor:
    """Additive attention mask (nW, w², w²) of the shifted windows: 0 within a region of
    the rolled map, −100 across regions (Liu et al. 2021, §3.2, "efficient batch
    computation for shifted configuration")."""
    region = torch.zeros(1, h, w, 1, device=device)
    spans = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    label = 0
    for rows in spans:
        for cols in spans:
            region[:, rows, cols, :] = label
            label += 1
    ids = window_partition(region, window).squeeze(-1)  # (nW, w²)
    mask = ids[:, None, :] - ids[:, :, None]
    return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)


class WindowAttention(nn.Module):
    """Multi-head self-attention within windows, with a relative position bias."""

    def __init__(self, dim: int, heads: int, window: int, qk_norm: bool = False):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5  # μP sets it ∝ 1/head_dim (scalelab.models.mup)
        self.q_norm = nn.LayerNorm(self.head_dim) if qk_norm else None
        self.k_norm = nn.LayerNorm(self.head_dim) if qk_norm else None
        self.bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        self.register_buffer("bias_index", relative_position_index(window).flatten(),
                             persistent=False)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        bw, n, c = x.shape  # (B · nW, w², C)
        qkv = self.qkv(x).view(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (B · nW, heads, w², C / heads)
        if self.q_norm is not None:  # qk-layernorm
            q, k = self.q_norm(q), self.k_norm(k)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.bias_table[self.bias_index].view(n, n, self.heads).permute(2, 0, 1)
        attn = attn + bias.unsqueeze(0)
        if mask is not None:  # (nW, w², w²), the same for every image of the batch
            n_windows = mask.shape[0]
            attn = attn.view(bw // n_windows, n_windows, self.heads, n, n) + mask[None, :, None]
            attn = attn.view(bw, self.heads, n, n)
        out = attn.softmax(-1) @ v
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class SwinLayer(nn.Module):
    """One Swin transformer layer (W-MSA or SW-MSA, then an MLP), pre-norm residual."""

    def __init__(self, dim: int, heads: int, window: int, shift: int, mlp_ratio: float,
                 qk_norm: bool = False):
        super().__init__()
        self.window, self.shift = window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, window, qk_norm)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self._masks: dict = {}

    def mask(self, h: int, w: int, device) -> torch.Tensor | None:
        if not self.shift:
            return None
        key = (h, w, str(device))
        if key not in self._masks:  # one mask per grid size, built once
            self._masks[key] = shifted_window_mask(h, w, self.window, self.shift, device)
        return self._masks[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W, C)
        b, h, w, c = x.shape
        y = self.norm1(x)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        windows = self.attn(window_partition(y, self.window), self.mask(h, w, x.device))
        y = window_reverse(windows, self.window, h, w)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + y
        return x + self.mlp(self.norm2(x))


class RSTB(nn.Module):
    """Residual Swin transformer block: Swin layers (shift alternating), a 3×3 conv, a skip."""

    def __init__(self, dim: int, heads: int, window: int, blocks: int, mlp_ratio: float,
                 qk_norm: bool = False):
        super().__init__()
        self.layers = nn.ModuleList(
            SwinLayer(dim, heads, window, 0 if i % 2 == 0 else window // 2, mlp_ratio,
                      qk_norm)
            for i in range(blocks))
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W, C)
        y = x
        for layer in self.layers:
            y = layer(y)
        y = self.conv(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x + y


class SwinIR(nn.Module):
    def __init__(self, width: int = 32, depth: int = 2, scale: int = 4, channels: int = 1,
                 in_channels: int | None = None, heads: int | None = None, window: int = 8,
                 blocks: int = 2, mlp_ratio: float = 2.0, qk_norm: bool = False):
        super().__init__()
        heads = heads if heads is not None else max(1, width // 8)
        for name, value in (("heads", heads), ("window", window), ("blocks", blocks)):
            if not isinstance(value, int) or value < 1:
                raise ScalelabError(f"swinir: {name} must be a positive integer, got {value!r}.")
        if width % heads:
            raise ScalelabError(f"swinir: the width {width} must be divisible by heads={heads}; "
                                f"choose heads among the divisors of the width.")
        if window < 2:
            raise ScalelabError(f"swinir: window must be at least 2 (to shift by half), got "
                                f"{window}.")
        if not mlp_ratio > 0:
            raise ScalelabError(f"swinir: mlp_ratio must be positive, got {mlp_ratio!r}.")
        self.scale, self.channels, self.window = scale, channels, window
        self.heads, self.blocks = heads, blocks
        self.conv_first = nn.Conv2d(in_channels or channels, width, 3, padding=1)
        self.embed_norm = nn.LayerNorm(width)  # SwinIR's patch embedding with patch_norm
        self.groups = nn.ModuleList(RSTB(width, heads, window, blocks, mlp_ratio, qk_norm)
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.conv_after_body = nn.Conv2d(width, width, 3, padding=1)
        self.upsample = nn.Sequential(
            nn.Conv2d(width, channels * scale * scale, 3, padding=1), nn.PixelShuffle(scale))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        h, w = lr.shape[-2:]
        pad_h, pad_w = (-h) % self.window, (-w) % self.window
        x = F.pad(lr, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else lr
        shallow = self.conv_first(x)
        y = self.embed_norm(shallow.permute(0, 2, 3, 1))  # (B, H, W, C) tokens
        for group in self.groups:
            y = group(y)
        y = self.norm(y).permute(0, 3, 1, 2)
        y = self.conv_after_body(y) + shallow
        out = self.upsample(y)[..., :h * self.scale, :w * self.scale]
        base = F.interpolate(lr[:, :self.channels], scale_factor=self.scale, mode="bilinear",
                             align_corners=False)
        return base + out

