"""One pair (raw, edit) in, one expert decision list out: alignment, parse, effects, confidence.

How it fits together:

1. :func:`editorbot.editing.align.align` explains the edit as raw beats under variants, on the
   beat grid (tracked, smoothed where it only jitters, cut before the release tail;
   :mod:`.align_grid`), which the edit's seams then correct to the sample.
2. :func:`editorbot.editing.align_beats.out_beats` decides each edit beat on the samples: an
   exact copy of a raw beat, or a changed beat with an effect family (the variant's, or the
   level effect that best explains it), keeping the path on the copy of repeated music the
   samples found.
3. :func:`editorbot.editing.align_parse.parse_output` turns the beat sequence into decisions.
4. :func:`editorbot.editing.align_resolve.resolve` walks the decisions in output order at the
   tracks' own rate; each effect decision's type and amount are chosen by resynthesising its
   whole segment, so the output positions of later segments follow exactly.

Decisions whose confidence is below ``LabelConfig.low_confidence`` are kept but listed in
``meta["low_confidence"]``, never silently replaced by a guess.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from editorbot.audio.io import Audio, AudioConfig, analysis_signal
from editorbot.editing.actions import SIZE_BEATS
from editorbot.editing.align import AlignConfig, Alignment, align
from editorbot.editing.align_beats import beat_edges, forward_reversed_runs, out_beats
from editorbot.editing.align_effects import EffectConfig
from editorbot.editing.align_grid import refine_grid
from editorbot.editing.align_parse import OutBeat, Parsed, parse_output
from editorbot.editing.align_resolve import ResolveConfig, resolve
from editorbot.editing.decisions import Decision, DecisionList
from editorbot.editing.labels import ExportConfig, prepare_pair
from editorbot.editing.labels.config import GlobalConfig
from editorbot.editing.labels.labeller import label_global

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelConfig:
    """How pairs become decision lists."""

    align: AlignConfig = field(default_factory=AlignConfig)
    """the raw↔edit alignment."""
    effects: EffectConfig = field(default_factory=EffectConfig)
    """effect detection thresholds."""
    low_confidence: float = 0.5
    """[0..1] decisions below this are flagged in ``meta["low_confidence"]``."""
    low_pair_confidence: float = 0.5
    """[0..1] a pair whose decisions' mean confidence is below this is named by ``editorbot
    labels`` (one line each)."""
    resolve: ResolveConfig = field(default_factory=ResolveConfig)
    """how effect decisions get their type and amount."""
    double_below_bpm: float = 80.0
    """[BPM] a tracked tempo below this is also tried at twice the tempo (popular music lies
    mostly at 80-160 BPM, so a slower tracked tempo is as likely half a fast one)."""
    level_margin_db: float = 3.0
    """[dB] how much more exactly the doubled grid's labels must re-render the edit to win."""
    first_sliver_periods: float = 0.75
    """[beats] a first beat shorter than this (of the median beat) is also tried joined to the
    next (:func:`labels_without_first_sliver`); a whole beat is a beat."""
    rerender_window_sec: float = 0.5
    """[s] the re-rendered labels are compared with the edit window by window: a beat's length
    a few ms off on a repeated beat shifts all later audio, which a whole-track residual reads
    as wrong everywhere after it."""
    rerender_lag_ms: float = 50.0
    """[ms] each window's lag is searched this far either side (more than a beat's length
    error of the grid accumulates over a few repeats, well under a beat)."""
    rerender_floor_db: float = -60.0
    """[dB] a window's residual counts down to this (a copy is a copy: -120 against -60 says
    nothing more about the metrical level) and up to 0 dB (unexplained audio)."""
    export: ExportConfig = field(default_factory=ExportConfig)
    """the export chain (codec delay, global gain, EQ) estimated before matching."""
    method: Literal["auto", "alignment", "global"] = "auto"
    """[name] which labeller explains the pair: "global" (one frame path through the raw
    track, :func:`editorbot.editing.labels.labeller.label_global`; for edits that went
    through a DAW's export: crossfades, mastering, a codec), "alignment" (beat units and
    sample-exact resynthesis; for edits straight out of a renderer, whose untouched beats are
    sample copies), or "auto": "alignment" where the pair's copy floor says its copies are
    sample-exact (``ExportConfig.exact_copy_db``), else "global"."""
    global_: GlobalConfig = field(default_factory=GlobalConfig)
    """the global labeller's settings."""
    smooth_below_ms: float = 8.0
    """[ms] a tracked grid whose beats sit at most this far (RMS) from the line through their
    neighbours only jitters, and is smoothed; further, the tempo itself moves and the grid is
    kept. A tracker's jitter is a few ms, uncorrelated from beat to beat; a moving tempo puts
    beats tens of ms off the line, correlated. The figures on demo and real music, and why one
    grid is labelled rather than both: benchmarks/RESULTS.md, alignment into decision lists."""


def label_pair(
    raw: Audio,
    edit: Audio,
    *,
    beat_times: np.ndarray,
    downbeat_phase: int = 0,
    config: LabelConfig | None = None,
    name: str = "<pair>",
) -> DecisionList:
    """The expert decision list that turns ``raw`` into ``edit``.

    Args:
        raw: the raw track.
        edit: the edit (same rate and channels expected; it is resampled/mixed if not).
        beat_times: [shape=(N,)] [s] the raw track's beats.
        downbeat_phase: [beats] the raw grid's first downbeat.
        config: settings.
        name: the pair, named in errors.

    Raises:
        DatasetError: unrelated audio or an edit longer than the language can make.
    """
    config = config or LabelConfig()
    sr_an = AudioConfig().analysis_sr
    y_raw, y_edit = analysis_signal(raw), analysis_signal(edit)
    al = align(y_raw, y_edit, sr=sr_an, beat_times=beat_times, config=config.align, name=name)
    edit_y = _match_layout(edit, raw)
    mono_raw, mono_edit = raw.y.mean(axis=0, keepdims=True), edit_y.mean(axis=0, keepdims=True)
    hop = round(config.align.hop_length * raw.sr / sr_an)  # [samples at sr] per frame
    beat_times = refine_grid(
        al, mono_raw[0], mono_edit[0], sr=raw.sr, hop=hop, beat_times=beat_times
    )
    edges = beat_edges(beat_times, raw.sr, raw.n_samples)
    out = out_beats(al, mono_raw, mono_edit, edges=edges, sr=raw.sr, hop=hop,
                    effects=config.effects)  # fmt: skip
    conf = _beat_confidence(al, out, len(beat_times))
    out = forward_reversed_runs(out)
    parsed = parse_output(out, n_beats=len(beat_times), downbeat_phase=downbeat_phase)
    decisions = resolve(
        parsed, out, raw, edit_y, edges=edges, hop=hop, beat_confidence=conf,
        downbeat_phase=downbeat_phase, effects=config.effects, config=config.resolve,
    )  # fmt: skip
    return DecisionList(
        sample_rate=raw.sr,
        beat_times=np.asarray(beat_times, dtype=float),
        decisions=tuple(decisions),
        downbeat_phase=downbeat_phase,
        meta=_meta(decisions, parsed, config),
    )


def _match_layout(edit: Audio, raw: Audio) -> np.ndarray:
    """The edit at the raw track's rate and channel count."""
    from editorbot.audio.io import resample

    y = resample(edit.y, orig_sr=edit.sr, target_sr=raw.sr)
    if y.shape[0] != raw.n_channels:
        y = np.repeat(y.mean(axis=0, keepdims=True), raw.n_channels, axis=0)
    return y


def _beat_confidence(al: Alignment, out: list[OutBeat], n_beats: int) -> np.ndarray:
    """[shape=(N,)] lowest alignment confidence of any unit playing each raw beat (1: none);
    ``out`` names each unit's raw beat as the samples decided it."""
    conf = np.ones(n_beats)
    for u, o in zip(al.units, out, strict=True):
        conf[o.beat] = min(conf[o.beat], al.confidence(u))
    return conf


def _low_confidence(decisions: list[Decision], config: LabelConfig) -> list[dict[str, Any]]:
    """The decisions below ``config.low_confidence``, as ``meta["low_confidence"]`` lists them."""
    return [
        {"beat": d.beat, "type": d.type.name, "n_beats": SIZE_BEATS[d.size],
         "confidence": d.confidence}
        for d in decisions
        if d.confidence < config.low_confidence
    ]  # fmt: skip


def _tracked_grid(
    raw: Audio, config: LabelConfig, where: str, bpm: float | None = None
) -> tuple[np.ndarray, int, str, float]:
    """(grid, downbeat phase, 'smoothed' or 'tracked', wobble in ms) of the raw track's tracked
    beats (at ``bpm`` where given): smoothed where they only jitter, cut before the release
    tail."""
    from editorbot.audio.beats import track_beats
    from editorbot.editing.align_grid import smoothed_grid, trimmed_tail, wobble_ms

    bg = track_beats(analysis_signal(raw), sr=AudioConfig().analysis_sr, name=where, bpm=bpm)
    tracked = np.asarray(bg.beat_times, dtype=float)
    wobble = wobble_ms(tracked)
    kind = "smoothed" if wobble <= config.smooth_below_ms else "tracked"
    grid = smoothed_grid(tracked) if kind == "smoothed" else tracked
    return trimmed_tail(grid, raw.y.mean(axis=0), sr=raw.sr), bg.downbeat_phase, kind, wobble


def _meta(decisions: list[Decision], parsed: list[Parsed], config: LabelConfig) -> dict[str, Any]:
    low = _low_confidence(decisions, config)
    return {
        "source": "editorbot labels (alignment)",
        "mean_confidence": float(np.mean([d.confidence for d in decisions])) if decisions else 1.0,
        "low_confidence": low,
        "mismatched_beats": int(sum(p.mismatches for p in parsed)),
        "config": asdict(config),
    }


def labels_at_editors_tempo(
    dl: DecisionList,
    raw: Audio,
    edit: Audio,
    config: LabelConfig,
    name: str,
    fast_grid: Callable[[], tuple[np.ndarray, int]] | None = None,
) -> DecisionList:
    """``dl``, or the labels on the grid at twice the tempo where those re-render the edit
    more exactly (a tracked tempo below ``double_below_bpm`` may be half the editor's).

    The edit decides the metrical level: on half the editor's tempo its one-beat cuts fall
    inside the grid's beats, which no decision can express, and the re-rendered labels leave
    whole beats unexplained; on the right level they re-render the edit to float rounding.

    Args:
        fast_grid: gives (beat times [s], downbeat phase) at twice the tempo, e.g. the raw
            track tracked again at that tempo, called only where the tracked grid's labels do
            not already re-render the edit exactly; default: a beat between every two of
            ``dl``'s.
    """
    from editorbot.editing.align_grid import doubled_grid

    times = np.asarray(dl.beat_times, dtype=float)
    if len(times) < 2 or 60.0 / float(np.median(np.diff(times))) >= config.double_below_bpm:
        return dl
    slow_db = _rerender_db(dl, raw, edit, config)
    if slow_db <= config.rerender_floor_db + config.level_margin_db:
        return dl  # already exact: no grid can re-render it a margin better
    if fast_grid is None:
        fast_times = doubled_grid(times, duration_sec=raw.duration_sec)
        fast_phase = (2 * dl.downbeat_phase) % 4
    else:
        fast_times, fast_phase = fast_grid()
    fast = label_pair(
        raw, edit, beat_times=fast_times, downbeat_phase=fast_phase, config=config, name=name
    )
    fast_db = _rerender_db(fast, raw, edit, config)
    logger.debug("%s: re-rendered to %.1f dB at the tracked tempo, %.1f at twice", name,
                 slow_db, fast_db)  # fmt: skip
    return fast if fast_db < slow_db - config.level_margin_db else dl


def _rerender_db(dl: DecisionList, raw: Audio, edit: Audio, config: LabelConfig) -> float:
    """[dB] what the edit has that rendering ``dl`` on ``raw`` does not, relative to the edit:
    the mean over the edit's windows of each window's residual against the rendering at its
    best lag (``rerender_window_sec``, ``rerender_lag_ms``), clipped to
    [``rerender_floor_db``, 0]."""
    from scipy.signal import correlate

    from editorbot.editing.render import render_decision_list

    y = render_decision_list(raw, dl).y.mean(axis=0).astype(np.float64)
    target = _match_layout(edit, raw).mean(axis=0).astype(np.float64)
    W = max(1, int(config.rerender_window_sec * raw.sr))
    lag = int(config.rerender_lag_ms * raw.sr / 1000)
    y = np.pad(y, (lag, lag + max(0, len(target) - len(y))))  # missing audio is unexplained
    out = []
    for a in range(0, len(target) - W + 1, W):
        e = target[a : a + W]
        energy = float(e @ e)
        if energy <= 1e-12:
            continue
        r = y[a : a + W + 2 * lag]
        c = correlate(r, e, mode="valid", method="fft")
        cum = np.concatenate([[0.0], np.cumsum(r * r)])
        c2 = cum[W:] - cum[:-W]  # energy of each lagged window
        d = c2 - 2.0 * c + energy  # |r_lag - e|^2 at every lag
        out.append(10.0 * np.log10(max(float(d.min()), 0.0) / energy + 1e-12))
    if not out:
        return 0.0
    return float(np.mean(np.clip(out, config.rerender_floor_db, 0.0)))


def _on_tracked_grid(
    raw: Audio, edit: Audio, config: LabelConfig, name: str, where: str
) -> DecisionList:
    """Labels on the raw track's tracked beats, smoothed where they only jitter (then tried on
    the track tracked again at twice the tempo, see :func:`labels_at_editors_tempo`: a tracker
    at half the tempo can slip by one fast beat between the two phases, which interpolating its
    beats would keep).

    Smoothing (:func:`editorbot.editing.align_grid.smoothed_grid`) takes a tracker's per-beat
    attack jitter out of a steady grid, which keeps the alignment on the right one of two
    repeated sections; on music whose tempo moves it moves beats off the music instead. The
    two show apart in how far the tracked beats sit from their local line
    (``LabelConfig.smooth_below_ms``).
    """

    grid, phase, kind, wobble = _tracked_grid(raw, config, where)
    logger.debug("%s: %s grid (beats %.1f ms RMS off their local line)", name, kind, wobble)
    dl = label_pair(raw, edit, beat_times=grid, downbeat_phase=phase, config=config, name=name)
    fast: list[tuple[np.ndarray, int, str, float]] = []

    def tracked_at_twice() -> tuple[np.ndarray, int]:
        """The track tracked again at twice the tempo (not interpolated)."""
        bpm = 60.0 / float(np.median(np.diff(grid)))
        fast.append(_tracked_grid(raw, config, where, bpm=2.0 * bpm))
        return fast[0][0], fast[0][1]

    best = labels_at_editors_tempo(dl, raw, edit, config, name, tracked_at_twice)
    if best is not dl:
        _, _, kind, wobble = fast[0]
    joined = labels_without_first_sliver(best, raw, edit, config, name)
    meta = {**joined.meta, "grid": kind, "grid_wobble_ms": wobble,
            "doubled_tempo": best is not dl, "first_sliver_joined": joined is not best}  # fmt: skip
    return replace(joined, meta=meta)


def labels_without_first_sliver(
    dl: DecisionList, raw: Audio, edit: Audio, config: LabelConfig, name: str
) -> DecisionList:
    """``dl``, or the labels on its grid with a short first beat joined to the next where those
    re-render the edit ``level_margin_db`` better.

    A tracked grid starts at 0 s; audio before the first tracked beat longer than a quarter
    beat is a beat of its own (:func:`editorbot.audio.beats.covering_grid`). An editor may count
    it into the first beat instead (a renderer does: its beat 0 runs from 0 s), and then every
    bar-sized decision at the start spans one beat more on this grid than any size says. The
    edit decides, as it decides the metrical level.
    """
    times = np.asarray(dl.beat_times, dtype=float)
    if len(times) < 3:
        return dl
    period = float(np.median(np.diff(times)))
    if times[1] - times[0] >= config.first_sliver_periods * period:
        return dl
    kept_db = _rerender_db(dl, raw, edit, config)
    if kept_db <= config.rerender_floor_db + config.level_margin_db:
        return dl  # already exact: no grid can re-render it a margin better
    joined = label_pair(
        raw, edit, beat_times=np.delete(times, 1), downbeat_phase=(dl.downbeat_phase - 1) % 4,
        config=config, name=name,
    )  # fmt: skip
    joined_db = _rerender_db(joined, raw, edit, config)
    logger.debug("%s: re-rendered to %.1f dB with the first sliver, %.1f joined", name, kept_db,
                 joined_db)  # fmt: skip
    return joined if joined_db < kept_db - config.level_margin_db else dl


def _on_floor(config: LabelConfig, floor_db: float) -> LabelConfig:
    """``config`` with the 'changed' thresholds raised above the pair's copy floor (an exported
    edit's untouched beats differ from the raw by the codec's residual, not by float rounding)."""
    changed = floor_db + config.export.floor_margin_db
    if changed <= config.effects.changed_db:
        return config
    effects = replace(
        config.effects, changed_db=changed, keep_margin_db=config.export.keep_margin_db
    )
    resolve = replace(config.resolve, split_db=max(config.resolve.split_db, changed))
    return replace(config, effects=effects, resolve=resolve)


def _global_labels(
    raw: Audio, edit: Audio, config: LabelConfig, name: str, grid_path: Path | None, where: str
) -> DecisionList:
    """The global labeller on the given grid, or on the tracked one (smoothed where it only
    jitters, cut before the release tail, as the alignment's)."""

    if grid_path is not None:
        given = DecisionList.load(grid_path)
        grid, phase = np.asarray(given.beat_times, dtype=float), given.downbeat_phase
        kind = "given"
    else:
        grid, phase, kind, _ = _tracked_grid(raw, config, where)
    dl = label_global(raw, edit, beat_times=grid, downbeat_phase=phase, config=config.global_)
    low = _low_confidence(list(dl.decisions), config)
    logger.debug("%s: global labeller on the %s grid", name, kind)
    return replace(dl, meta={**dl.meta, "grid": kind, "low_confidence": low})


def label_files(
    raw_path: Path,
    edit_path: Path,
    out_path: Path,
    *,
    grid_path: Path | None = None,
    config: LabelConfig | None = None,
) -> dict[str, Any]:
    """Label one pair from files and write its decision list atomically.

    Args:
        raw_path: the raw track.
        edit_path: its edit.
        out_path: where the decision list (JSON) goes.
        grid_path: a decision list whose ``beat_times`` to use instead of tracking beats.
        config: settings.

    Returns:
        A summary: name, number of decisions, mean confidence, low-confidence count.

    Raises:
        EditorbotError: unreadable audio, unrelated audio, an impossible edit.
    """
    from editorbot.audio.io import load_audio
    from editorbot.errors import DatasetError

    name = raw_path.stem.removesuffix("_raw")
    config = config or LabelConfig()
    raw, edit, chain = prepare_pair(load_audio(raw_path), load_audio(edit_path), config.export)
    if chain.copy_floor_db > config.export.unrelated_floor_db:
        raise DatasetError(
            f"{name}: the edit does not match the raw track (its closest copies of the raw "
            f"differ by {chain.copy_floor_db:.1f} dB, as unrelated audio does); check that the "
            "files pair up"
        )
    use_global = config.method == "global" or (
        config.method == "auto" and chain.best_copy_db > config.export.exact_copy_db
    )
    config = _on_floor(config, chain.copy_floor_db)
    if use_global:
        dl = _global_labels(raw, edit, config, name, grid_path, str(raw_path))
    elif grid_path is not None:
        grid = DecisionList.load(grid_path)
        beat_times, phase = np.asarray(grid.beat_times, dtype=float), grid.downbeat_phase
        dl = label_pair(
            raw, edit, beat_times=beat_times, downbeat_phase=phase, config=config, name=name
        )
    else:
        dl = _on_tracked_grid(raw, edit, config, name, str(raw_path))
    dl = replace(dl, meta={**dl.meta, "export": chain.meta(config.export)})
    dl.save(out_path)
    return {
        "name": name,
        "decisions": len(dl.decisions),
        "mean_confidence": dl.meta["mean_confidence"],
        "low_confidence": len(dl.meta["low_confidence"]),
    }
