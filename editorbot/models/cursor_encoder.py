"""The policy's encoder: a track's static beats encoded once, the cursor's view added per step.

A beat token has static channels (features, context, in-track flag: the same all episode) and
dynamic ones (edit history, position relative to the cursor; :mod:`editorbot.envs.spaces`).
:class:`CursorEncoder` splits the work between them:

1. static: ``layers`` neighbourhood-attention blocks (:mod:`editorbot.models.natten_encoder`)
   over the static channels alone, with no position embedding (the phrase-phase context
   channels say where a beat sits; the blocks are translation-equivariant). A beat's output
   depends on the static channels within ``reach = layers * dilation * (kernel_size // 2)``
   beats of it, and is the same whichever window it is computed in, as long as no attention
   window on the way is shifted at the window's edge: true for the beats at least ``reach``
   from both edges ("valid");
2. per step: the ``2 r + 1`` valid beats around the cursor (``r = W // 2 - 1 - reach``) give keys
   and values (a projection of their static embedding + of their history channels + a learned
   embedding of their offset from the cursor); one attention from a cursor query (its static
   embedding and the globals) pools them; the cursor embedding, the pooled view and the
   projected globals are fused into one embedding, as :class:`HybridNATTENEncoder` did.

Step 1 is the expensive part and does not depend on the cursor, so it can be computed once per
track: :class:`TrackCache` encodes a registered track's padded static table in window-sized
chunks (their valid centres tile the track) and slices the rows of each step. Computed from the
observation alone (:meth:`CursorEncoder.forward`) or from the cache
(:meth:`CursorEncoder.forward_rows`), the embedding is the same network's; a test holds the two
within float32 rounding.

Shape:
    tokens [B, W, F_tok], globals [B, G] -> [B, D].
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from editorbot.envs import spaces as sp
from editorbot.errors import ParameterError
from editorbot.models.natten_encoder import (
    EncoderConfig,
    NeighborhoodAttentionLayer,
    fusion_layers,
)

logger = logging.getLogger(__name__)


_CHUNK_BITS = 15
"""Bits of a chunk's index in :meth:`CursorEncoder.batch_rows`'s (track, chunk) ids (48 + 15 < 63;
2^15 chunks of at least 2 beats: over 9 hours at 120 BPM)."""


def static_reach(cfg: EncoderConfig) -> int:
    """[beats] how far a beat's static embedding sees: ``layers * dilation * (kernel_size//2)``."""
    return cfg.layers * cfg.dilation * (cfg.kernel_size // 2)


def cursor_radius(cfg: EncoderConfig) -> int:
    """[beats] r: the cursor attends to the valid beats within r of it (``W//2 - 1 - reach``)."""
    return cfg.window // 2 - 1 - static_reach(cfg)


class StaticBeatEncoder(nn.Module):
    """Input projection -> neighbourhood-attention blocks -> LayerNorm, on static channels.

    Shape:
        static: [B, L, F_static] -> [B, L, D] (any L >= kernel_size * dilation).
    """

    def __init__(self, cfg: EncoderConfig, n_static: int) -> None:
        super().__init__()
        self.input_proj = nn.Linear(n_static, cfg.hidden)
        self.blocks = nn.ModuleList(NeighborhoodAttentionLayer(cfg) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(cfg.hidden)

    def forward(self, static: torch.Tensor) -> torch.Tensor:
        x = self.input_proj(static)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class CursorEncoder(nn.Module):
    """Static neighbourhood attention + a per-step cursor attention (module docstring).

    Args:
        cfg: the encoder's config; ``reach`` must leave ``r >= 0`` (see :func:`cursor_radius`).

    Raises:
        ParameterError: on a config whose static reach does not fit the window.

    Shape:
        tokens: [B, W, F_tok]; globals: [B, G]. Rows (static part of a step): [B, 2r + 1, 3 D].
        Returns: [B, D].
    """

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        r = cursor_radius(cfg)
        if r < 0:
            raise ParameterError(
                f"EncoderConfig: layers * dilation * (kernel_size // 2) = {static_reach(cfg)} "
                f"beats must be below window // 2 = {cfg.window // 2}; lower kernel_size, "
                "dilation or layers, or widen the window"
            )
        self.n_static = sp.n_static_channels(cfg.n_token_features)
        if self.n_static < 1:
            raise ParameterError(
                f"EncoderConfig: n_token_features={cfg.n_token_features}, need more than the "
                f"{sp.N_DYNAMIC} dynamic channels"
            )
        self.cfg, self.radius = cfg, r
        D = cfg.hidden
        self.static_encoder = StaticBeatEncoder(cfg, self.n_static)
        self.static_kv = nn.Linear(D, 2 * D)
        self.history_kv = nn.Linear(sp.N_HISTORY, 2 * D, bias=False)
        self.offset_kv = nn.Parameter(torch.randn(2 * r + 1, 2 * D) * 0.02)
        self.query = nn.Linear(D, D)
        self.query_globals = nn.Linear(cfg.n_globals, D, bias=False) if cfg.n_globals else None
        self.attn_out = nn.Linear(D, D)
        self.globals_proj, self.fuse = fusion_layers(cfg)

    @property
    def out_dim(self) -> int:
        """D, width of the embedding."""
        return self.cfg.hidden

    @property
    def _span(self) -> slice:
        """The window's beats the cursor attends to (the valid ones around ``W // 2``)."""
        c = sp.cursor_index(self.cfg.window)
        return slice(c - self.radius, c + self.radius + 1)

    def _rows(self, static_embedding: torch.Tensor) -> torch.Tensor:
        """[..., D] static embeddings -> [..., 3 D] (embedding | static keys | static values)."""
        return torch.cat([static_embedding, self.static_kv(static_embedding)], dim=-1)

    def step_rows(self, tokens: torch.Tensor) -> torch.Tensor:
        """The static part of each step, from the observation's window (no cache).

        Shape:
            tokens: [B, W, F_tok] -> [B, 2r + 1, 3 D].
        """
        B, W, F_tok = tokens.shape
        if (W, F_tok) != (self.cfg.window, self.cfg.n_token_features):
            raise ParameterError(
                f"CursorEncoder: tokens of shape {tuple(tokens.shape)}, expected "
                f"[B, {self.cfg.window}, {self.cfg.n_token_features}] (window, token features)"
            )
        static = self.static_encoder(tokens[..., : self.n_static])
        return self._rows(static[:, self._span])

    def batch_rows(self, tokens: torch.Tensor, track: torch.Tensor) -> torch.Tensor:
        """:meth:`step_rows` of a batch, each chunk of a track's static beats encoded once.

        A step's attended beats lie in one or two of its track's chunks (those of
        :meth:`track_rows`), and the beats those chunks' outputs need lie in the step's own
        window; so the chunks the batch needs are filled from the windows, encoded once each,
        and every step slices its rows from them. Where the batch's steps need more chunks
        than they are steps (scattered steps of many tracks), each window is encoded alone.

        Shape:
            tokens: [B, W, F_tok]; track: [B, 3] (the ``track`` observation) -> [B, 2r + 1, 3 D].
        """
        B, W, F_tok = tokens.shape
        reach, r = static_reach(self.cfg), self.radius
        V = W - 2 * reach
        high, low, cursor = track.long().unbind(dim=1)  # float32 holds each part exactly
        key = (high << sp.TRACK_KEY_BITS) | low  # < 2^48
        first, last = cursor // V, (cursor + 2 * r) // V  # the chunks each step attends in
        chunk_of = torch.cat([first, last])  # [2B]
        assert int(chunk_of.max()) < 1 << _CHUNK_BITS, "a track of over 2^15 chunks"
        ids = (key.repeat(2) << _CHUNK_BITS) | chunk_of  # (track, chunk) as one int64
        chunks, slot = torch.unique(ids, return_inverse=True)
        U = len(chunks)
        if U >= B:
            return self.step_rows(tokens)
        # Step b's window (static rows c .. c + W - 1) into each of its chunks: chunk k holds
        # static rows 1 + kV .. kV + W.
        # Each chunk cell takes its value from one (step, beat) of the batch that holds it:
        # overlapping windows hold the same values, so any one will do, and only the U * W
        # cells are copied (not the 2 B windows).
        beat = cursor[:, None] + torch.arange(W, device=tokens.device)  # [B, W]
        source = torch.arange(B * W, device=tokens.device).reshape(B, W)
        cell_source = torch.full((U * W,), -1, dtype=torch.long, device=tokens.device)
        for chunk, chunk_slot in ((first, slot[:B]), (last, slot[B:])):
            position = beat - 1 - chunk[:, None] * V  # [B, W]
            inside = (position >= 0) & (position < W)
            cell_source[(chunk_slot[:, None] * W + position)[inside]] = source[inside]
        filled = cell_source >= 0
        inputs = tokens.new_zeros(U * W, self.n_static)
        inputs[filled] = tokens.reshape(B * W, F_tok)[cell_source[filled], : self.n_static]
        valid = self.static_encoder(inputs.reshape(U, W, -1))[:, reach : reach + V]
        table = self._rows(valid.reshape(U * V, -1))  # [U * V, 3 D]
        # Step b's rows: table index q = c + j (j = 0 .. 2r) sits in chunk q // V at q % V.
        q = cursor[:, None] + torch.arange(2 * r + 1, device=tokens.device)  # [B, 2r + 1]
        in_last = (q // V) == last[:, None]
        chunk_slot = torch.where(in_last, slot[B:, None], slot[:B, None])
        return table[chunk_slot * V + q % V]

    def track_rows(self, static: torch.Tensor) -> torch.Tensor:
        """The static part of every step of one track, in one batched pass.

        The padded table is cut into windows of W beats, ``V = W - 2 reach`` apart, whose valid
        centres tile the beats the steps attend to; each window is encoded as a step's would be.

        Shape:
            static: [n + W, F_static] (the registered table, row c starts cursor c's window)
            -> [n + 1 + 2r, 3 D]; rows ``c .. c + 2r`` are cursor c's (:meth:`step_rows`), for
            every cursor 0 .. n (n: the terminal observation's).
        """
        n_rows, n_static = static.shape
        W, reach = self.cfg.window, static_reach(self.cfg)
        n = n_rows - W
        V = W - 2 * reach
        n_needed = n + 1 + 2 * self.radius
        n_chunks = -(-n_needed // V)
        # The first attended row is reach + 1 (cursor 0's span starts at W//2 - r); its window
        # starts at row 1. Rows past the table are zeros, as outside every observation.
        padded = static.new_zeros(1 + (n_chunks - 1) * V + W, n_static)
        used = min(n_rows, len(padded) + 1) - 1
        padded[:used] = static[1 : 1 + used]
        chunks = padded.unfold(0, W, V).transpose(1, 2)  # [n_chunks, W, F_static]
        valid = self.static_encoder(chunks)[:, reach : reach + V]
        return self._rows(valid.reshape(n_chunks * V, -1)[:n_needed])

    def forward_rows(
        self, rows: torch.Tensor, tokens: torch.Tensor, globals_: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The embedding from a step's static rows and the observation's dynamic channels.

        Shape:
            rows: [B, 2r + 1, 3 D]; tokens: [B, W, F_tok]; globals: [B, G] -> [B, D].
        """
        B, R, D3 = rows.shape
        D, H = self.cfg.hidden, self.cfg.heads
        history = tokens[:, self._span, self.n_static : self.n_static + sp.N_HISTORY]
        cursor = rows[:, self.radius, :D]
        kv = rows[..., D:] + self.history_kv(history) + self.offset_kv
        k, v = kv.reshape(B, R, 2, H, D // H).permute(2, 0, 3, 1, 4)  # each [B, H, R, E]
        q = self.query(cursor)
        if self.query_globals is not None:
            assert globals_ is not None, "the config has globals; pass them"
            q = q + self.query_globals(globals_)
        pooled = F.scaled_dot_product_attention(q.reshape(B, H, 1, D // H), k, v)
        branches = [cursor, self.attn_out(pooled.reshape(B, D))]
        if self.globals_proj is not None:
            branches.append(self.globals_proj(globals_))
        out = self.fuse(torch.cat(branches, dim=-1))
        assert out.shape == (B, D), out.shape
        return out

    def forward(
        self,
        tokens: torch.Tensor,
        globals_: torch.Tensor | None = None,
        track: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The embedding of each observation; with the ``track`` observation, each chunk of a
        track's static beats is encoded once per batch (:meth:`batch_rows`)."""
        rows = self.step_rows(tokens) if track is None else self.batch_rows(tokens, track)
        return self.forward_rows(rows, tokens, globals_)


class TrackCache:
    """Each registered track's :meth:`CursorEncoder.track_rows`, computed once per weights.

    Lives beside an encoder in a process that also runs the editing environment (an env
    runner, ``editorbot edit``): the ``track`` observation names a table of
    :func:`~editorbot.envs.spaces.register_static_track`. The rows are recomputed when any of
    the encoder's static weights changes (in place or replaced: their version counters and data
    pointers are compared at every call).

    Args:
        encoder: the encoder whose rows are cached.
        max_bytes: size of the kept rows; the least recently used tracks are dropped first,
            never one of the current batch (a 3-minute track at 120 BPM is 0.6 MB at the
            compact width, 2.4 MB at the default's).
    """

    def __init__(self, encoder: CursorEncoder, *, max_bytes: int = 256 << 20) -> None:
        self._encoder = encoder
        self._max_bytes = max_bytes
        self._bytes = 0
        self._tables: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._params: Sequence[torch.Tensor] = [
            *encoder.static_encoder.parameters(),
            *encoder.static_kv.parameters(),
        ]
        self._stamp: tuple[tuple[int, int], ...] = ()

    def step_rows(self, track: torch.Tensor) -> torch.Tensor | None:
        """The static rows of each observation (as :meth:`CursorEncoder.step_rows`), or None if
        a track is not registered in this process.

        Shape:
            track: [B, 3] (the ``track`` observation) -> [B, 2r + 1, 3 D].
        """
        # Version counters rise on every in-place change (optimizer step, load_state_dict).
        stamp = tuple((p.data_ptr(), p._version) for p in self._params)
        if stamp != self._stamp:
            self._tables.clear()
            self._bytes = 0
            self._stamp = stamp
        span = 2 * self._encoder.radius + 1
        rows, used = [], set()
        for high, low, cursor in track.tolist():
            key = sp.track_key(high, low)
            used.add(key)
            table = self._table(key)
            if table is None:
                return None
            c = int(cursor)
            if c + span > len(table):  # past the terminal cursor: not a step of this track
                return None
            rows.append(table[c : c + span])
        while self._bytes > self._max_bytes and len(self._tables) > len(used):
            _, dropped = self._tables.popitem(last=False)  # used least recently: not this batch
            self._bytes -= dropped.nbytes
        return torch.stack(rows)

    def _table(self, key: int) -> torch.Tensor | None:
        table = self._tables.get(key)
        if table is not None:
            self._tables.move_to_end(key)
            return table
        static = sp.static_track(key)
        if static is None:
            return None
        device = self._encoder.offset_kv.device
        table = self._encoder.track_rows(torch.tensor(static, device=device))
        self._tables[key] = table
        self._bytes += table.nbytes
        return table
