"""The beat-window encoder: neighbourhood attention across beats, with an exact PyTorch fallback.

Implements 1-D neighbourhood attention (Hassani et al., "Neighborhood Attention Transformer",
https://arxiv.org/abs/2204.07143): every beat attends to exactly ``kernel_size`` beats around it;
at the borders the window is shifted inwards rather than cut, so every query still sees
``kernel_size`` keys; with dilation ``d`` the beats split into ``d`` interleaved groups and the
window is taken (and shifted) inside a beat's group.

``natten.na1d`` runs the fused kernels on CUDA. NATTEN has no backward on CPU, so there
:func:`neighborhood_attention_1d` computes the same neighbourhood as a boolean mask passed to
``torch.nn.functional.scaled_dot_product_attention``; a test checks it against ``natten.na1d``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from editorbot.errors import ParameterError

logger = logging.getLogger(__name__)

Backend = Literal["auto", "natten", "torch"]
_BACKENDS = ("auto", "natten", "torch")


@dataclass(frozen=True)
class EncoderSizes:
    """Width and depth of :class:`HybridNATTENEncoder`: what a run chooses (the RL network's
    :class:`~editorbot.models.policy_net.ModuleConfig` extends it with its heads)."""

    hidden: int = 512
    """D, model width [channels]."""
    heads: int = 8
    """H, attention heads [heads]; must divide ``hidden``."""
    layers: int = 3
    """Neighbourhood-attention layers [layers]."""
    kernel_size: int = 33
    """K, beats each beat attends to [beats]; odd, and ``kernel_size * dilation <= window``."""
    dilation: int = 1
    """Step between attended beats [beats]."""
    mlp_ratio: float = 4.0
    """Hidden width of each MLP block as a multiple of ``hidden`` [ratio]."""
    dropout: float = 0.0
    """Dropout probability after attention and MLP blocks [probability]."""
    backend: Backend = "auto"
    """Attention kernel: "natten" (fused), "torch" (exact fallback), "auto" (natten on CUDA)."""

    def encoder_sizes(self) -> dict[str, Any]:
        """These fields alone (of a subclass too), as keyword arguments."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(EncoderSizes)}


@dataclass(frozen=True, kw_only=True)
class EncoderConfig(EncoderSizes):
    """Shape and size of :class:`HybridNATTENEncoder`: its sizes plus the observation's."""

    n_token_features: int
    """F_tok, features per beat token [features]."""
    n_globals: int
    """G, global scalars fed to the fusion [scalars]; 0 for none."""
    window: int = 64
    """W, beats in the token window [beats]; the cursor is at ``W // 2``."""

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def tiny(cls, *, n_token_features: int = 8, n_globals: int = 4) -> EncoderConfig:
        """A small configuration for tests (W = 64 so attention still spans many beats)."""
        return cls(n_token_features=n_token_features, n_globals=n_globals, window=64, hidden=32,
                   heads=4, layers=1, kernel_size=9, mlp_ratio=2.0)  # fmt: skip


def _validate(cfg: EncoderConfig) -> None:
    if cfg.kernel_size < 1 or cfg.kernel_size % 2 == 0:
        raise ParameterError(f"EncoderConfig: kernel_size={cfg.kernel_size}, need an odd number")
    if cfg.dilation < 1:
        raise ParameterError(f"EncoderConfig: dilation={cfg.dilation}, need at least 1")
    if cfg.kernel_size * cfg.dilation > cfg.window:
        raise ParameterError(
            f"EncoderConfig: kernel_size * dilation = {cfg.kernel_size * cfg.dilation} beats "
            f"exceeds window={cfg.window}; lower kernel_size or dilation, or widen the window"
        )
    if cfg.hidden % cfg.heads != 0:
        raise ParameterError(
            f"EncoderConfig: hidden={cfg.hidden} is not divisible by heads={cfg.heads}"
        )
    if cfg.backend not in _BACKENDS:
        raise ParameterError(f"EncoderConfig: backend={cfg.backend!r}, use one of {_BACKENDS}")
    if cfg.n_token_features < 1 or cfg.n_globals < 0 or cfg.layers < 0:
        raise ParameterError(f"EncoderConfig: bad sizes in {dataclasses.asdict(cfg)}")


@functools.lru_cache(maxsize=32)
def _neighborhood_mask_cpu(length: int, kernel_size: int, dilation: int) -> torch.Tensor:
    """[W, W] bool, True where query i may attend key j (NATTEN's neighbourhood)."""
    idx = torch.arange(length)
    group = idx % dilation
    pos_in_group = idx // dilation
    # [beats] beats in each beat's dilation group: group g holds beats g, g+d, g+2d, ...
    group_len = (length - group + dilation - 1) // dilation
    # The window is centred on the query and shifted inwards at the borders of its group.
    start = torch.minimum((pos_in_group - kernel_size // 2).clamp(min=0), group_len - kernel_size)
    same_group = group[:, None] == group[None, :]
    offset = pos_in_group[None, :] - start[:, None]
    return same_group & (offset >= 0) & (offset < kernel_size)


def neighborhood_mask(
    length: int, *, kernel_size: int, dilation: int = 1, device: torch.device | None = None
) -> torch.Tensor:
    """Boolean attention mask of 1-D neighbourhood attention.

    Args:
        length: W, sequence length [beats].
        kernel_size: K, keys per query (odd).
        dilation: step between keys.
        device: where to put the mask.

    Returns:
        [shape=(W, W)] bool; row i is True on the ``kernel_size`` keys query i attends to.
    """
    if kernel_size % 2 == 0 or kernel_size * dilation > length:
        raise ParameterError(
            f"neighborhood_mask: kernel_size={kernel_size} (must be odd) with "
            f"dilation={dilation} does not fit length={length}"
        )
    return _neighborhood_mask_cpu(length, kernel_size, dilation).to(device)


def neighborhood_attention_1d(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    kernel_size: int,
    dilation: int = 1,
) -> torch.Tensor:
    """Exact PyTorch equivalent of ``natten.na1d(q, k, v, kernel_size, dilation=dilation)``.

    Shape:
        q, k, v: [B, W, H, E] (NATTEN's heads-last layout).
        Returns: [B, W, H, E].
    """
    B, W, H, E = q.shape
    mask = neighborhood_mask(W, kernel_size=kernel_size, dilation=dilation, device=q.device)
    # SDPA wants [B, H, W, E]; contiguous copies are much faster than strided views on CPU.
    q_, k_, v_ = (t.transpose(1, 2).contiguous() for t in (q, k, v))
    out = F.scaled_dot_product_attention(q_, k_, v_, attn_mask=mask)
    return out.transpose(1, 2).contiguous()


@functools.lru_cache(maxsize=32)
def _natten_works(
    device: str, W: int, H: int, E: int, dtype: torch.dtype, kernel_size: int, dilation: int
) -> bool:
    """Whether ``natten.na1d`` runs forward and backward here (checked once per shape)."""
    try:
        import natten

        with torch.enable_grad():  # the first call may come from inside torch.no_grad()
            q = torch.randn(1, W, H, E, device=device, dtype=dtype, requires_grad=True)
            natten.na1d(q, q, q, kernel_size=kernel_size, dilation=dilation).sum().backward()
    except Exception as e:  # any failure means: use the exact fallback instead
        logger.warning("natten.na1d unusable on %s (%s); using the PyTorch fallback", device, e)
        return False
    return True


def _use_natten(q: torch.Tensor, cfg: EncoderConfig) -> bool:
    if cfg.backend != "auto":
        return cfg.backend == "natten"
    if not q.is_cuda:
        return False  # NATTEN has no backward on CPU
    B, W, H, E = q.shape
    return _natten_works(str(q.device), W, H, E, q.dtype, cfg.kernel_size, cfg.dilation)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cfg: EncoderConfig) -> torch.Tensor:
    if _use_natten(q, cfg):
        import natten

        return natten.na1d(q, k, v, kernel_size=cfg.kernel_size, dilation=cfg.dilation)
    return neighborhood_attention_1d(q, k, v, kernel_size=cfg.kernel_size, dilation=cfg.dilation)


class NeighborhoodAttentionLayer(nn.Module):
    """Pre-norm block: x + NA(LN(x)), then x + MLP(LN(x)).

    Shape:
        x: [B, W, D] -> [B, W, D].
    """

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        D = cfg.hidden
        self.norm_attn = nn.LayerNorm(D)
        self.qkv = nn.Linear(D, 3 * D)
        self.proj = nn.Linear(D, D)
        self.norm_mlp = nn.LayerNorm(D)
        mlp_hidden = round(cfg.mlp_ratio * D)
        self.mlp = nn.Sequential(nn.Linear(D, mlp_hidden), nn.GELU(), nn.Linear(mlp_hidden, D))
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, W, D = x.shape
        H = self.cfg.heads
        q, k, v = self.qkv(self.norm_attn(x)).reshape(B, W, 3, H, D // H).unbind(dim=2)
        attn = _attend(q, k, v, self.cfg).reshape(B, W, D)
        x = x + self.dropout(self.proj(attn))
        return x + self.dropout(self.mlp(self.norm_mlp(x)))


def fusion_layers(cfg: EncoderConfig) -> tuple[nn.Linear | None, nn.Sequential]:
    """The globals projection (None without globals) and the fusion MLP of an encoder's
    branches (cursor, pooled and, with globals, globals), each D wide, into one D embedding."""
    D = cfg.hidden
    globals_proj = nn.Linear(cfg.n_globals, D) if cfg.n_globals else None
    n_branches = 3 if cfg.n_globals else 2
    return globals_proj, nn.Sequential(nn.Linear(n_branches * D, D), nn.GELU(), nn.LayerNorm(D))


class HybridNATTENEncoder(nn.Module):
    """Beat tokens (+ globals) -> one embedding for the cursor beat.

    Input projection + learned positional encoding -> ``layers`` neighbourhood-attention blocks
    across the W beats -> fusion of the cursor token, a mean-pooled summary of the window and the
    projected globals.

    Shape:
        tokens: [B, W, F_tok]; globals: [B, G] (ignored when G == 0).
        Returns: [B, D].
    """

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        D = cfg.hidden
        self.input_proj = nn.Linear(cfg.n_token_features, D)
        self.pos_embedding = nn.Parameter(torch.randn(cfg.window, D) * 0.02)
        self.blocks = nn.ModuleList(NeighborhoodAttentionLayer(cfg) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(D)
        self.pool_proj = nn.Linear(D, D)
        self.globals_proj, self.fuse = fusion_layers(cfg)

    @property
    def out_dim(self) -> int:
        """D, width of the embedding."""
        return self.cfg.hidden

    def encode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Per-beat features after the attention layers.

        Shape:
            tokens: [B, W, F_tok] -> [B, W, D].
        """
        B, W, F_tok = tokens.shape
        if (W, F_tok) != (self.cfg.window, self.cfg.n_token_features):
            raise ParameterError(
                f"HybridNATTENEncoder: tokens of shape {tuple(tokens.shape)}, expected "
                f"[B, {self.cfg.window}, {self.cfg.n_token_features}] (window, token features)"
            )
        x = self.input_proj(tokens) + self.pos_embedding
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward(self, tokens: torch.Tensor, globals_: torch.Tensor | None = None) -> torch.Tensor:
        B, W, F_tok = tokens.shape
        x = self.encode_tokens(tokens)
        branches = [x[:, W // 2], self.pool_proj(x.mean(dim=1))]
        if self.globals_proj is not None:
            assert globals_ is not None, "the config has globals; pass them"
            branches.append(self.globals_proj(globals_))
        out = self.fuse(torch.cat(branches, dim=-1))
        assert out.shape == (B, self.cfg.hidden), out.shape
        return out
