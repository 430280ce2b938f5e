"""The renderer: raw audio + beat grid + decision list -> edited audio + output map.

One renderer serves the environment's final reward, inference, the demo-data generator and the
evaluation (ARCHITECTURE.md). The decisions run through the one edit state machine
(:func:`editorbot.editing.decisions.plan_segments`); each planned segment becomes a chunk of
samples, and chunks are laid end to end, sample-accurate on the beat grid:

- two KEEP-like chunks that are contiguous in the source are joined with no fade at all, so
  contiguous kept audio is bit-identical to the source;
- where the source is contiguous but the effect changes (KEEP -> GAIN, EQ ...), the two
  versions of the same audio are blended with a linear ramp of ``ramp_ms`` (equal-gain, since
  they are correlated);
- where the output jumps in the source, an equal-power crossfade of ``crossfade_ms``
  (uncorrelated material; https://www.dsprelated.com/freebooks/pasp/Equal_Power_Crossfade.html).

Fades are centred on the seam and use audio just past each chunk's edges (every chunk carries
a little context on both sides), so no fade changes the output length: the output's length is
exactly the sum of its chunks.

The source is read a segment at a time (``Audio.read`` / ``AudioFile.read``) and the output
goes through an :class:`~editorbot.editing.output_tape.OutputTape`, which holds only its recent
end: :func:`render_to_file` writes a long edit to disk block by block from a track that was
never decoded whole, with the same samples :func:`render_decision_list` returns in memory.

Shape:
    y: (C, L) raw audio; result y: (C, L_out); beat_samples: (n_beats,) int64 at ``sr``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from editorbot.audio.io import Audio, AudioFile
from editorbot.editing import dsp
from editorbot.editing.actions import (
    SIZE_BEATS,
    ActionAmount,
    ActionSize,
    ActionType,
    PlannedSegment,
    amount_value,
)
from editorbot.editing.decisions import Decision, DecisionList, plan_segments
from editorbot.editing.output_tape import OutputTape, Sink, array_sink
from editorbot.errors import DatasetError, ParameterError

logger = logging.getLogger(__name__)

# Types whose chunk is raw audio, sample for sample (seams between them may need no fade).
_IDENTITY = frozenset(
    {
        ActionType.KEEP,
        ActionType.LOOP,
        ActionType.REORDER,
        ActionType.JUMP_BACK,
        ActionType.SWAP_NEXT,
    }
)
# Types whose output stays sample-aligned with the raw audio (pointwise or zero-delay filters).
_ALIGNED = _IDENTITY | {
    ActionType.GAIN,
    ActionType.FADE_IN,
    ActionType.FADE_OUT,
    ActionType.EQ_LOW,
    ActionType.EQ_HIGH,
    ActionType.DISTORTION,
    ActionType.REVERB,
}


@dataclass(frozen=True)
class RenderConfig:
    """How decisions become audio."""

    crossfade_ms: float = 10.0
    """[ms] equal-power crossfade where the output jumps in the source."""
    ramp_ms: float = 5.0
    """[ms] linear ramp where the source is contiguous but the effect changes (gain, EQ ...)."""
    context_ms: float = 50.0
    """[ms] raw audio processed before/after an effect segment so filters and the vocoder settle."""
    n_fft: int = 2048
    """[samples] STFT size of the phase vocoder (time stretch, pitch shift)."""
    hop_length: int = 512
    """[samples] STFT hop of the phase vocoder."""
    reverb_wet: float = 0.5
    """[amplitude ratio] level of the reverb's room response relative to the dry signal."""
    distortion_colour: float = 20.0
    """[0..100] SoX overdrive colour (even-harmonic content)."""
    seed: int = 0
    """[-] seed of the reverb's noise room response (renders are deterministic)."""
    max_output_ratio: float = 4.0
    """[ratio] longest output, as a multiple of the raw track's length, before any sample is
    allocated (JUMP_BACK and LOOP can otherwise plan hours from seconds)."""
    max_output_sec: float | None = None
    """[s] longest output in seconds; overrides ``max_output_ratio`` when set."""

    def __post_init__(self) -> None:
        for name, lo, hi in _RANGES:
            value = getattr(self, name)
            if value is None and name == "max_output_sec":
                continue
            if not (isinstance(value, int | float) and math.isfinite(value) and lo <= value <= hi):
                raise ParameterError(f"render config: {name} = {value!r} outside [{lo}, {hi}]")
        if self.hop_length > self.n_fft:
            raise ParameterError(f"render config: hop_length {self.hop_length} > n_fft")

    def max_output_samples(self, *, sr: int, n_raw: int) -> int:
        """[samples] the output bound for a raw track of ``n_raw`` samples at ``sr``."""
        if self.max_output_sec is not None:
            return int(self.max_output_sec * sr)
        return int(self.max_output_ratio * n_raw)


_RANGES = (  # (field, lowest, highest accepted)
    ("crossfade_ms", 0.0, 1000.0),
    ("ramp_ms", 0.0, 1000.0),
    ("context_ms", 0.0, 5000.0),
    ("n_fft", 16, 65536),
    ("hop_length", 1, 65536),
    ("reverb_wet", 0.0, 10.0),
    ("distortion_colour", 0.0, 100.0),
    ("max_output_ratio", 0.0, 1000.0),
    ("max_output_sec", 0.0, 1e6),
)


@dataclass(frozen=True)
class OutputSegment:
    """Where one piece of the output came from.

    For REPEAT_PREV (``from_output``) the ``raw_*``/``beat_*`` fields index the output itself.
    """

    out_start: int
    """[samples] first output sample (inclusive)."""
    out_end: int
    """[samples] end in the output (exclusive)."""
    raw_start: int
    """[samples] first source sample."""
    raw_end: int
    """[samples] end in the source (exclusive)."""
    beat_start: int
    """[beats] first source beat."""
    beat_end: int
    """[beats] end in the source (exclusive)."""
    type: ActionType
    """The effect applied."""
    size: ActionSize
    """The action's size."""
    amount: ActionAmount
    """The action's amount."""
    decision_index: int
    """Index into the decision list; -1 for undecided beats kept as they are."""
    repeat: int = 0
    """[count] which repeat of a LOOP this is (0 = first)."""
    from_output: bool = False
    """True for REPEAT_PREV: the source is the output so far."""


@dataclass(frozen=True, eq=False)
class RenderResult:
    """The edited audio and its map."""

    y: np.ndarray
    """[shape=(C, L_out)] float32 edited audio."""
    sr: int
    """[Hz] sample rate (the input's)."""
    segments: list[OutputSegment]
    """Every output piece, in output order."""
    out_beat_samples: np.ndarray
    """[shape=(n_out_beats,)] int64 output sample where each output beat starts."""


@dataclass(frozen=True, eq=False)
class StreamedRender:
    """What :func:`render_to_file` wrote: the map of a :class:`RenderResult`, without ``y``."""

    path: Path
    """The output file."""
    sr: int
    """[Hz] sample rate (the input's)."""
    n_samples: int
    """[samples] output length."""
    segments: list[OutputSegment]
    """Every output piece, in output order."""
    out_beat_samples: np.ndarray
    """[shape=(n_out_beats,)] int64 output sample where each output beat starts."""


_REACH_BEATS = max(SIZE_BEATS.values())
"""[output beats] how far back REPEAT_PREV reads the output (its largest size)."""


@dataclass
class _Chunk:
    """A rendered piece: body plus ``H`` samples of context on each side."""

    pre: np.ndarray  # [C, H]
    body: np.ndarray  # [C, M]
    post: np.ndarray  # [C, H]
    beat_offsets: np.ndarray  # [n] body sample where each output beat starts
    raw_start: int
    raw_end: int
    identity: bool
    aligned: bool


def render(
    y: np.ndarray,
    *,
    sr: int,
    beat_samples: np.ndarray,
    decisions: DecisionList | Sequence[Decision],
    config: RenderConfig | None = None,
    downbeat_phase: int = 0,
) -> RenderResult:
    """Render an edit.

    Args:
        y: [shape=(C, L)] raw audio.
        sr: [Hz] its rate.
        beat_samples: [shape=(n_beats,)] int64 beat starts at ``sr`` (beat 0's segment starts
            at sample 0, the last beat's ends at ``L``).
        decisions: a decision list, or decisions in cursor order.
        config: defaults to ``RenderConfig()``.
        downbeat_phase: [beats] used when ``decisions`` is a plain sequence.

    Returns:
        The edited audio at ``sr`` with ``C`` channels, and the output map.

    Raises:
        ParameterError: a bad grid or audio shape.
        DatasetError: decisions that do not fit the grid.
    """
    config = config or RenderConfig()
    C, L = y.shape
    edges = _edges(beat_samples, L)
    if not isinstance(decisions, DecisionList):
        decisions = DecisionList(sr, None, tuple(decisions), downbeat_phase=downbeat_phase)
    plan = plan_segments(decisions, len(edges) - 1)
    return _render_in_memory(Audio(y=y.astype(np.float32, copy=False), sr=sr), edges, plan, config)


def _edges(beat_samples: np.ndarray, L: int) -> np.ndarray:
    return segment_edges(beat_samples, L)


def _render_in_memory(
    source: Audio | AudioFile,
    edges: np.ndarray,
    plan: list[tuple[int, PlannedSegment]],
    config: RenderConfig,
) -> RenderResult:
    assembler = _Assembler(source, edges, config)
    out = np.empty((source.n_channels, 0), dtype=np.float32)

    def into_array(L_out: int) -> Sink:
        nonlocal out
        out = np.empty((source.n_channels, L_out), dtype=np.float32)  # every sample set
        return array_sink(out)

    assembler.run(plan, into_array)
    return RenderResult(out, source.sr, assembler.segments, assembler.out_beat_samples())


class _Assembler:
    """Lays chunks end to end on an output tape, fading at seams."""

    def __init__(self, source: Audio | AudioFile, edges: np.ndarray, config: RenderConfig):
        self.source, self.sr, self.edges, self.config = source, source.sr, edges, config
        self.hx, self.hr = half_fades(config, self.sr)  # half of each crossfade, of each ramp
        self.H = segment_margin(config, self.sr)  # [samples] context each chunk carries each side
        self.tape = OutputTape(source.n_channels, lambda block: None)
        self.pos = 0
        self.prev: _Chunk | None = None
        self.out_beats: list[int] = []
        self.segments: list[OutputSegment] = []

    def run(self, plan: list[tuple[int, PlannedSegment]], open_sink: Callable[[int], Sink]) -> int:
        """Render ``plan`` into the sink ``open_sink(L_out)`` returns once the output's length
        ``L_out`` [samples] is known and within the limit.

        Returns:
            ``L_out``.
        """
        C, L = self.source.n_channels, self.source.n_samples
        limit = self.config.max_output_samples(sr=self.sr, n_raw=L)
        # The same layout the chunks use, checked before any output sample is allocated.
        L_out = planned_length(self.edges, plan, limit=limit)
        if L_out > limit:
            raise ParameterError(
                f"the decisions make more than {L_out / self.sr:.1f} s of output, past the "
                f"limit of {limit / self.sr:.1f} s (--max-output-sec; by default "
                f"{self.config.max_output_ratio:g}x the raw track)"
            )
        self.tape = OutputTape(C, open_sink(L_out))
        for idx, seg in plan:
            chunk = self._chunk(seg)
            for r in range(seg.repeats):
                self._place(chunk, seg, idx, r)
                self.tape.release(self._oldest_needed())
        self.tape.release(self.pos, force=True)
        assert self.pos == L_out == self.tape.base, (self.pos, L_out, self.tape.base)
        return L_out

    def out_beat_samples(self) -> np.ndarray:
        return np.array(self.out_beats, np.int64)

    def _oldest_needed(self) -> int:
        """[samples] the first output sample a later seam or REPEAT_PREV may still read."""
        reach = self.out_beats[-_REACH_BEATS] if len(self.out_beats) >= _REACH_BEATS else 0
        return max(0, min(self.pos, reach) - self.H)

    # -- chunks ---------------------------------------------------------------------------

    def _chunk(self, seg: PlannedSegment) -> _Chunk:
        if seg.from_output:
            return self._output_chunk(seg)
        H, t = self.H, seg.type
        s, e = int(self.edges[seg.start_beat]), int(self.edges[seg.end_beat])
        offsets, M = segment_layout(self.edges, seg)
        x = render_segment(
            self.source, t, seg.amount, sr=self.sr, raw_start=s, raw_end=e, config=self.config
        )
        assert x.shape[1] == H + M + H, (x.shape, H, M)
        identity = t in _IDENTITY
        aligned = t != ActionType.REVERSE if identity or t == ActionType.REVERSE else t in _ALIGNED
        return _Chunk(x[:, :H], x[:, H:-H], x[:, -H:], offsets, s, e, identity, aligned)

    def _output_chunk(self, seg: PlannedSegment) -> _Chunk:
        """REPEAT_PREV: output beats [a, b) again, followed by what followed them (prev post)."""
        assert self.prev is not None
        H = self.H
        starts, M = segment_layout(self.edges, seg, out_beats=self.out_beats, pos=self.pos)
        s = self.out_beats[seg.start_beat]  # [output samples] it plays at least one beat
        e = s + M
        pre = np.zeros((self.source.n_channels, H), np.float32)
        lo = max(s - H, 0)
        pre[:, H - (s - lo) :] = self.tape.window(lo, s)
        body = self.tape.window(s, e).copy()
        return _Chunk(pre, body, self.prev.post.copy(), starts, s, e, False, False)

    # -- assembly -------------------------------------------------------------------------

    def _place(self, chunk: _Chunk, seg: PlannedSegment, idx: int, repeat: int) -> None:
        pos, M = self.pos, chunk.body.shape[1]
        h, power = self._seam(chunk)
        out = self.tape.window(pos - h, pos + M)  # out[:, 0] is output sample pos - h
        if h == 0:
            out[:] = chunk.body
        else:
            assert self.prev is not None
            w_out, w_in = dsp.crossfade_windows(2 * h, power=power)
            old = np.concatenate([out[:, :h], self.prev.post[:, :h]], axis=1)
            new = np.concatenate([chunk.pre[:, self.H - h :], chunk.body[:, :h]], axis=1)
            out[:, : 2 * h] = old * w_out + new * w_in
            out[:, 2 * h :] = chunk.body[:, h:]
        self.out_beats += (pos + chunk.beat_offsets).tolist()
        self.segments.append(_segment(seg, chunk, pos, pos + M, idx, repeat))
        self.prev, self.pos = chunk, pos + M

    def _seam(self, cur: _Chunk) -> tuple[int, bool]:
        """Half-length [samples] and kind (equal-power?) of the fade into ``cur``; 0 = none."""
        prev = self.prev
        if prev is None:
            return 0, False
        contiguous = prev.raw_end == cur.raw_start
        if contiguous and prev.identity and cur.identity:
            return 0, False
        correlated = contiguous and prev.aligned and cur.aligned
        h = self.hr if correlated else self.hx
        h = min(h, prev.body.shape[1] // 2, cur.body.shape[1] // 2)
        return h, not correlated


def planned_length(
    edges: np.ndarray, plan: Sequence[tuple[int, PlannedSegment]], *, limit: int | None = None
) -> int:
    """[samples] length of the output a plan renders to, without touching audio.

    Args:
        edges: [shape=(n_beats + 1,)] int64 segment boundaries (beat ``i`` is
            ``[edges[i], edges[i + 1])``; 0 first, the track's length last).
        plan: :func:`editorbot.editing.decisions.plan_segments` of a decision list.
        limit: [samples] stop counting once the output passes it (the result is then > limit).
    """
    out_beats: list[int] = []
    pos = 0
    for _, seg in plan:
        offsets, M = segment_layout(edges, seg, out_beats=out_beats, pos=pos)
        for _ in range(seg.repeats):
            out_beats += (pos + offsets).tolist()
            pos += M
        if limit is not None and pos > limit:
            break
    return pos


def body_samples(n_samples: int, rate: float) -> int:
    """[samples] length of ``n_samples`` raw samples played at ``rate`` (the vocoder's rounding)."""
    return n_samples if rate == 1.0 else round(n_samples / rate)


def segment_edges(beat_samples: np.ndarray, n_samples: int, *, check: bool = True) -> np.ndarray:
    """[shape=(n_beats + 1,)] int64 beat segment boundaries of a grid on ``n_samples`` of audio:
    beat ``i`` renders ``[edges[i], edges[i + 1])``, beat 0 from sample 0, the last beat to the end.

    Args:
        beat_samples: [shape=(n_beats,)] beat starts [samples].
        n_samples: [samples] length of the audio.
        check: refuse a grid that does not increase strictly inside the audio (the renderer
            does; the aligner lays trial grids it checks itself).

    Raises:
        ParameterError: with ``check``, the grid does not fit the audio.
    """
    b = np.asarray(beat_samples, dtype=np.int64)
    if check and (b.ndim != 1 or len(b) == 0):
        raise ParameterError(f"beat_samples must be a non-empty 1-D array, got shape {b.shape}")
    if check and (b[0] < 0 or b[-1] >= n_samples or np.any(np.diff(b) <= 0)):
        raise ParameterError(
            f"beat_samples must increase strictly inside [0, {n_samples}); got {b[0]}..{b[-1]}"
            " — the beat grid does not belong to this audio (wrong file or sample rate?)"
        )
    return np.concatenate([[0], b[1:], [n_samples]]).astype(np.int64)


def half_fades(config: RenderConfig, sr: int) -> tuple[int, int]:
    """[samples] half of the crossfade at a jump and half of the ramp where only the effect
    changes (each at least 1): a seam fades over ``2 * h`` samples centred on it."""
    crossfade = max(1, round(config.crossfade_ms * 1e-3 * sr / 2))
    ramp = max(1, round(config.ramp_ms * 1e-3 * sr / 2))
    return crossfade, ramp


def segment_margin(config: RenderConfig, sr: int) -> int:
    """[samples] audio each rendered segment carries beyond its body on each side (the longer
    half-fade), so any seam can fade into it."""
    return max(half_fades(config, sr))


def render_segment(
    source: np.ndarray | Audio | AudioFile,
    type: ActionType,
    amount: ActionAmount,
    *,
    sr: int,
    raw_start: int,
    raw_end: int,
    config: RenderConfig,
) -> np.ndarray:
    """Raw ``[raw_start, raw_end)`` under ``(type, amount)``, exactly as the renderer lays it.

    An effect is computed with :func:`segment_margin` + ``context_ms`` of raw audio (times the
    speed ratio) either side, so the phase vocoder's frames and the reverb's tail are those of
    the full render, sample for sample.

    Args:
        source: the raw track: a [shape=(C, L)] array, or an :class:`Audio` / :class:`AudioFile`
            (read by range, zero outside the track).

    Returns:
        [shape=(C, H + M + H)]: ``H`` = :func:`segment_margin` samples before the body, the body
        of ``M`` samples (:func:`body_samples` of the span at the segment's speed), ``H`` after.
    """

    def read(start: int, end: int) -> np.ndarray:
        if isinstance(source, np.ndarray):
            return dsp.slice_padded(source, start, end)
        return source.read(start, end)

    H = segment_margin(config, sr)
    s, e = raw_start, raw_end
    if type in _IDENTITY or type == ActionType.REVERSE:
        x = read(s - H, e + H)
        return x[:, ::-1] if type == ActionType.REVERSE else x
    rate = _speed(type, amount)
    ctx = round(config.context_ms * 1e-3 * sr)
    P = int(np.ceil((H + ctx) * rate))  # [input samples] context before and after
    x = _effect(read(s - P, e + P), type, amount, sr=sr, pre=P, n=e - s, cfg=config)
    at = round(P / rate)  # [output samples] where the body starts in x
    return dsp.slice_padded(x, at - H, at + body_samples(e - s, rate) + H)


def segment_layout(
    edges: np.ndarray, seg: PlannedSegment, *, out_beats: Sequence[int] = (), pos: int = 0
) -> tuple[np.ndarray, int]:
    """Where each output beat of a planned segment starts in its body, and the body's length
    [samples], as the renderer lays them (one play; a LOOP lays it ``seg.repeats`` times).

    A raw segment's beats keep their lengths, in reverse order under REVERSE, scaled by
    1 / speed under SPEED_UP/SPEED_DOWN (:func:`body_samples`); REPEAT_PREV (``from_output``)
    plays output beats ``[start_beat, end_beat)`` of the output laid so far.

    Args:
        edges: [shape=(n_beats + 1,)] int64 raw segment boundaries (:func:`segment_edges`).
        seg: the segment; its type and amount set the order and the speed.
        out_beats: [samples] where each output beat so far starts (read by REPEAT_PREV).
        pos: [samples] the output's length so far (where REPEAT_PREV's last beat may end).

    Returns:
        ([shape=(n,)] int64 body sample where each of the ``n`` output beats starts, body
        length ``M`` [samples]).
    """
    a, b = seg.start_beat, seg.end_beat
    if seg.from_output:
        ob = np.array([*out_beats, pos], dtype=np.int64)
        return ob[a:b] - ob[a], int(ob[b] - ob[a])
    s, e = int(edges[a]), int(edges[b])
    if seg.type == ActionType.REVERSE:
        return e - edges[a + 1 : b + 1][::-1], e - s
    rate = _rate(seg)
    if rate == 1.0:
        return edges[a:b] - s, e - s
    return np.round((edges[a:b] - s) / rate).astype(np.int64), body_samples(e - s, rate)


def _segment(
    seg: PlannedSegment, chunk: _Chunk, out_start: int, out_end: int, idx: int, repeat: int
) -> OutputSegment:
    return OutputSegment(
        out_start=out_start,
        out_end=out_end,
        raw_start=chunk.raw_start,
        raw_end=chunk.raw_end,
        beat_start=seg.start_beat,
        beat_end=seg.end_beat,
        type=seg.type,
        size=seg.size,
        amount=seg.amount,
        decision_index=idx,
        repeat=repeat,
        from_output=seg.from_output,
    )


def _effect(
    x: np.ndarray,
    type: ActionType,
    amount: ActionAmount,
    *,
    sr: int,
    pre: int,
    n: int,
    cfg: RenderConfig,
) -> np.ndarray:
    """Apply ``(type, amount)`` to ``x`` = ``pre`` samples of context, ``n`` of body, context."""
    return dsp.apply_effect(
        x,
        type,
        amount_value(type, amount),
        sr=sr,
        pre=pre,
        n=n,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        reverb_wet=cfg.reverb_wet,
        distortion_colour=cfg.distortion_colour,
        seed=cfg.seed,
    )


def _rate(seg: PlannedSegment) -> float:
    """[ratio] playback speed of a segment (1 unless SPEED_UP/SPEED_DOWN)."""
    return _speed(seg.type, seg.amount)


def _speed(type: ActionType, amount: ActionAmount) -> float:
    """[ratio] playback speed of ``(type, amount)`` (1 unless SPEED_UP/SPEED_DOWN)."""
    if type in (ActionType.SPEED_UP, ActionType.SPEED_DOWN):
        return amount_value(type, amount)
    return 1.0


def render_decision_list(
    audio: Audio | AudioFile, dl: DecisionList, *, config: RenderConfig | None = None
) -> RenderResult:
    """Render a track with a decision list, into memory.

    Uses the list's ``beat_times``; only when they are absent are beats tracked (slower, and
    the grid then depends on the tracker).

    Raises:
        DatasetError: the list does not fit the track (rate, beats, decisions).
        ParameterError: the output would be longer than the config's limit.
    """
    edges, plan = _plan(audio, dl)
    return _render_in_memory(_float32(audio), edges, plan, config or RenderConfig())


def render_to_file(
    audio: Audio | AudioFile,
    dl: DecisionList,
    path: str | Path,
    *,
    config: RenderConfig | None = None,
    subtype: str = "FLOAT",
    protect: tuple[str | Path, ...] = (),
) -> StreamedRender:
    """Render a track with a decision list straight into an audio file, a block at a time.

    The samples are :func:`render_decision_list`'s; they are written to a temporary file beside
    ``path`` as the output tape releases them, and the file replaces ``path`` once complete
    (:func:`editorbot.atomic.atomic_path`). Memory holds the segment being rendered and the last
    phrase of output, whatever the track's length.

    Args:
        audio: the track (an :class:`AudioFile` is read by seek, a segment at a time).
        dl: the decisions.
        path: .wav, .flac or .ogg; ``subtype`` as :func:`editorbot.audio.io.write_audio`.
        config: defaults to ``RenderConfig()``.
        subtype: libsndfile subtype.
        protect: paths never to overwrite (the input).

    Raises:
        DatasetError: the list does not fit the track.
        ParameterError: the output would be longer than the config's limit, or ``path`` is an
            input or not a writable format.
    """
    from editorbot.audio.io import audio_writer

    edges, plan = _plan(audio, dl)
    assembler = _Assembler(_float32(audio), edges, config or RenderConfig())
    with audio_writer(path, sr=audio.sr, n_channels=audio.n_channels, subtype=subtype,
                      protect=protect) as write:  # fmt: skip
        n_samples = assembler.run(plan, lambda L_out: write)
    return StreamedRender(Path(path), audio.sr, n_samples, assembler.segments,
                          assembler.out_beat_samples())  # fmt: skip


def _float32(audio: Audio | AudioFile) -> Audio | AudioFile:
    """``audio`` with float32 samples (an :class:`AudioFile` reads float32)."""
    if isinstance(audio, Audio) and audio.y.dtype != np.float32:
        return Audio(y=audio.y.astype(np.float32), sr=audio.sr, path=audio.path)
    return audio


def _plan(
    audio: Audio | AudioFile, dl: DecisionList
) -> tuple[np.ndarray, list[tuple[int, PlannedSegment]]]:
    """The segment edges of ``dl``'s grid on ``audio`` and its planned segments."""
    name = audio.name()
    if dl.sample_rate != audio.sr and dl.beat_times is not None:
        logger.info("%s: decisions made at %d Hz, audio at %d Hz", name, dl.sample_rate, audio.sr)
    phase = dl.downbeat_phase
    if dl.beat_times is None:
        from editorbot.audio.beats import track_beats
        from editorbot.audio.io import AudioConfig, analysis_signal

        grid = track_beats(analysis_signal(audio), sr=AudioConfig().analysis_sr, name=name)
        beat_samples, phase = grid.beat_samples(audio.sr), grid.downbeat_phase
    else:
        beat_samples = np.round(np.asarray(dl.beat_times) * audio.sr).astype(np.int64)
    try:
        edges = _edges(beat_samples, audio.n_samples)
    except ParameterError as e:
        raise DatasetError(f"{name}: {e}") from e
    dl = replace(dl, downbeat_phase=phase)
    return edges, plan_segments(dl, len(edges) - 1, name=name)
