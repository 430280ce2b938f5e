"""One pair (raw, edit) in, one expert decision list out: alignment, parse, effects, confidence.

How it fits together:

1. :func:`editorbot.editing.align.align` explains the edit as raw beats under variants.
2. Each aligned beat gets an effect family: the variant's (speed, pitch, reverse), or, for beats
   played as is, 'unchanged' or the level effect that best explains them (analysis by synthesis
   at the analysis rate, :mod:`editorbot.editing.align_effects`).
3. :func:`editorbot.editing.align_parse.parse_output` turns the beat sequence into decisions.
4. The decisions are walked in output order at the tracks' own rate; each effect decision's type
   and amount are chosen by resynthesising its whole segment, so the output positions of later
   segments follow exactly (a wrong speed amount would shift everything after it).

Decisions whose confidence is below ``LabelConfig.low_confidence`` are kept but listed in
``meta["low_confidence"]``, never silently replaced by a guess.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from editorbot.audio.io import Audio, AudioConfig, analysis_signal
from editorbot.editing.actions import (
    SIZE_BEATS,
    ActionAmount,
    ActionSize,
    ActionType,
    EditState,
    initial_state,
    step,
)
from editorbot.editing.align import AlignConfig, Alignment, align
from editorbot.editing.align_effects import (
    LEVEL_EFFECTS,
    EffectConfig,
    EffectGuess,
    best_effect,
    exact_beats,
    refine_start,
)
from editorbot.editing.align_grid import refine_grid
from editorbot.editing.align_parse import OutBeat, Parsed, parse_output
from editorbot.editing.decisions import Decision, DecisionList

logger = logging.getLogger(__name__)

_T = ActionType
_FAMILIES: dict[ActionType, tuple[ActionType, ...]] = {
    _T.SPEED_UP: (_T.SPEED_UP, _T.SPEED_DOWN),
    _T.SPEED_DOWN: (_T.SPEED_UP, _T.SPEED_DOWN),
    # Chroma cannot tell -7 semitones from +5 (an octave apart): both directions are re-tried.
    _T.PITCH_UP: (_T.PITCH_UP, _T.PITCH_DOWN),
    _T.PITCH_DOWN: (_T.PITCH_UP, _T.PITCH_DOWN),
    _T.REVERSE: (_T.REVERSE,),
    **{t: LEVEL_EFFECTS for t in LEVEL_EFFECTS},
}
"""Types re-tried on the whole segment, by the type the per-beat pass saw."""
_LEVEL_FAMILY = {t: _T.GAIN for t in LEVEL_EFFECTS}
"""One beat cannot tell a fade from a gain or a shelf from a reverb reliably; the parse groups
changed beats as one family and the whole segment's resynthesis picks the type."""


@dataclass(frozen=True)
class LabelConfig:
    """How pairs become decision lists."""

    align: AlignConfig = field(default_factory=AlignConfig)
    """the raw↔edit alignment."""
    effects: EffectConfig = field(default_factory=EffectConfig)
    """effect detection thresholds."""
    low_confidence: float = 0.5
    """[0..1] decisions below this are flagged in ``meta["low_confidence"]``."""
    effect_ok_db: float = -20.0
    """[dB] resynthesis residual at or below which an effect segment is fully trusted."""
    split_db: float = -50.0
    """[dB] residual above which a level-effect decision is tried in parts (an exact
    resynthesis, with the renderer's context, matches to float rounding, about -120 dB; a
    -6 dB instead of -3 dB high shelf on dull music leaves only about -30 dB)."""
    split_gain_db: float = 3.0
    """[dB] how much better the parts must explain the segment for the split to stand."""
    double_below_bpm: float = 80.0
    """[BPM] a tracked tempo below this is also tried at twice the tempo (popular music lies
    mostly at 80-160 BPM, so a slower tracked tempo is as likely half a fast one)."""
    level_margin_db: float = 3.0
    """[dB] how much more exactly the doubled grid's labels must re-render the edit to win."""
    anchor_ms: float = 60.0
    """[ms] how far an effect segment's start is looked for around where the walker puts it
    (the tracked grid's error summed over a few unseen boundaries)."""


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
    out = _out_beats(al, mono_raw, mono_edit, raw.sr, sr_an, beat_times, config)
    out = _forward_reversed_runs(out)
    parsed = parse_output(out, n_beats=len(beat_times), downbeat_phase=downbeat_phase)
    decisions = _resolve(parsed, al, raw, edit_y, beat_times, downbeat_phase, config)
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


def _out_beats(
    al: Alignment,
    y_raw: np.ndarray,
    y_edit: np.ndarray,
    sr: int,
    sr_an: int,
    beat_times: np.ndarray,
    config: LabelConfig,
) -> list[OutBeat]:
    """The edit's beats with an effect family each (per-beat pass on the mono mix at the tracks'
    own rate, where an unchanged beat matches sample for sample)."""
    edges = _edges(beat_times, sr, y_raw.shape[1])
    hop = round(config.align.hop_length * sr / sr_an)  # [samples at sr] per alignment frame
    out: list[OutBeat] = []
    for u in al.units:
        var = al.variants[u.variant]
        # Samples first, whatever the variant: a stuttered beat the DP read as a stretched
        # neighbour is still an exact copy of a raw beat.
        prev = out[-1].beat if out else None
        exact = exact_beats(
            y_raw, y_edit, edges, u.beat, u.start_frame * hop, prev, hop, sr, config.effects
        )
        if exact:
            out.append(OutBeat(exact[0], _T.KEEP, tuple(exact[1:])))
            continue
        if var.type != _T.KEEP:
            out.append(OutBeat(u.beat, _LEVEL_FAMILY.get(var.type, var.type)))
            continue
        beat = u.beat
        guess = _level_guess(y_raw, y_edit, edges, beat, u.start_frame * hop, hop, sr)
        # A changed beat after an exact one: the edit most likely went on (an effect over a
        # section that sounds like another, which the DP may have named instead).
        nxt = None if prev is None else prev + 1
        if nxt is not None and nxt != u.beat and nxt < len(edges) - 1:
            on = _level_guess(y_raw, y_edit, edges, nxt, u.start_frame * hop, hop, sr)
            if on.residual_db < guess.residual_db:
                beat, guess = nxt, on
        out.append(OutBeat(beat, _LEVEL_FAMILY.get(guess.type, guess.type)))
    return out


def _level_guess(
    y_raw: np.ndarray, y_edit: np.ndarray, edges: np.ndarray, beat: int, guess: int, hop: int,
    sr: int,
) -> EffectGuess:  # fmt: skip
    """The level effect that best explains raw ``beat`` where the edit plays it near ``guess``
    [samples] (within two ``hop`` [samples])."""
    s, e = int(edges[beat]), int(edges[beat + 1])
    start = refine_start(y_raw, y_edit, s, e, guess, hop)
    return best_effect(
        y_raw, y_edit, sr=sr, raw_start=s, raw_end=e, edit_start=start,
        types=LEVEL_EFFECTS, keep=False,
    )  # fmt: skip


def _forward_reversed_runs(out: list[OutBeat]) -> list[OutBeat]:
    """A reversed segment plays its beats last to first; put them in raw order for the parse,
    which reads a REVERSE like any effect on the beats under the cursor."""
    fixed, i = list(out), 0
    while i < len(fixed):
        j = i + 1
        while (
            j < len(fixed)
            and fixed[j].effect == _T.REVERSE == fixed[i].effect
            and fixed[j].beat == fixed[j - 1].beat - 1
        ):
            j += 1
        fixed[i:j] = fixed[i:j][::-1]
        i = j
    return fixed


def _edges(beat_times: np.ndarray, sr: int, L: int) -> np.ndarray:
    """[shape=(N + 1,)] beat segment boundaries in samples (beat 0 from 0, the last to L)."""
    b = np.round(np.asarray(beat_times) * sr).astype(np.int64)
    return np.concatenate([[0], b[1:], [L]])


def _resolve(
    parsed: list[Parsed],
    al: Alignment,
    raw: Audio,
    edit_y: np.ndarray,
    beat_times: np.ndarray,
    downbeat_phase: int,
    config: LabelConfig,
) -> list[Decision]:
    """Walk the decisions in output order at the raw rate, choosing each effect's amount."""
    edges = _edges(beat_times, raw.sr, raw.n_samples)
    conf = _beat_confidence(al, len(beat_times))
    walker = _Walker(initial_state(len(beat_times), downbeat_phase=downbeat_phase), edges)
    decisions = []
    for p in parsed:
        c = _decision_confidence(p, conf)
        if p.type not in _FAMILIES:
            walker.take(p.type, p, p.amount)
            decisions.append(Decision(p.beat, p.type, p.size, p.amount, float(round(c, 3))))
            continue
        args = (raw, edit_y, edges, config)
        walker.pos = _anchor(p, _near_unit(al, p, walker.pos, raw.sr, config), *args)
        pieces = (
            _level_pieces(p.beat, p.size, walker.pos, *args)
            if p.type in LEVEL_EFFECTS
            else [(p.beat, p.size, _guess(p.beat, p.size, walker.pos, _FAMILIES[p.type], *args))]
        )
        for beat, size, g in pieces:
            piece = replace(p, beat=beat, size=size)
            walker.take(g.type, piece, g.amount)
            gc = _effect_confidence(g.residual_db, g.margin_db, config.effect_ok_db)
            decisions.append(Decision(beat, g.type, size, g.amount, float(round(min(c, gc), 3))))
    return decisions


def _near_unit(al: Alignment, p: Parsed, pos: int, sr: int, config: LabelConfig) -> int:
    """[edit samples] the walker's position, or where the alignment plays the decision's first
    beat when the walker is further than ``anchor_ms`` from every such place (a misread
    decision before it, such as a repeat read as a cut, shifted all that follows by beats)."""
    first = p.beat + SIZE_BEATS[p.size] - 1 if p.type == _T.REVERSE else p.beat
    hop = al.frame_sec * sr  # [samples at sr] per alignment frame
    starts = [round(u.start_frame * hop) for u in al.units if u.beat == first]
    if not starts:
        return pos
    near = min(starts, key=lambda t: abs(t - pos))
    return pos if abs(near - pos) <= config.anchor_ms * 1e-3 * sr + hop else near


def _anchor(
    p: Parsed, pos: int, raw: Audio, edit_y: np.ndarray, edges: np.ndarray, config: LabelConfig
) -> int:
    """[edit samples] where effect decision ``p`` starts: where its first beat's (a reversed
    segment's whole) best resynthesis lines up with the edit, within ``anchor_ms`` of the
    walker's position (kept where no candidate explains that beat to ``effect_ok_db``).

    The walker sums segment lengths from the grid; on a tracked grid a boundary no seam showed
    (see :mod:`editorbot.editing.align_grid`) can be a few ms off, and a resynthesis laid 50
    samples off explains nothing (0 dB instead of -120 dB at the right place).
    """
    reach = round(config.anchor_ms * 1e-3 * raw.sr)
    # A reversed segment starts with its last beat: only the whole of it lines up.
    size = p.size if p.type == _T.REVERSE else ActionSize.BEAT
    g = _guess(p.beat, size, pos, _FAMILIES[p.type], raw, edit_y, edges, config, reach)
    # Only a start some candidate explains is a landmark; elsewhere the correlation is noise.
    return g.edit_start if g.residual_db <= config.effect_ok_db else pos


def _guess(
    beat: int,
    size: ActionSize,
    pos: int,
    types: tuple[ActionType, ...],
    raw: Audio,
    edit_y: np.ndarray,
    edges: np.ndarray,
    config: LabelConfig,
    search: int = 0,
) -> EffectGuess:
    """The effect that best explains raw beats ``[beat, beat + size)`` laid at edit ``pos``
    (or up to ``search`` samples either side)."""
    s, e = int(edges[beat]), int(edges[beat + SIZE_BEATS[size]])
    return best_effect(
        raw.y, edit_y, sr=raw.sr, raw_start=s, raw_end=e, edit_start=pos, types=types,
        config=config.effects, search=search,
    )  # fmt: skip


def _level_pieces(
    beat: int, size: ActionSize, pos: int, raw: Audio, edit_y: np.ndarray, edges: np.ndarray,
    config: LabelConfig,
) -> list[tuple[int, ActionSize, EffectGuess]]:  # fmt: skip
    """A level-effect decision, split top-down where one effect does not explain it.

    The parse groups changed beats as one family, so a run of an EQ then a fade reaches here as
    one decision; when its best single resynthesis leaves more than ``split_db`` and the halves
    (four beats for a bar) explain it ``split_gain_db`` better, each part is decided on its own.
    Level effects keep the length, so the parts sit at ``pos`` plus their raw lengths.
    """
    g = _guess(beat, size, pos, LEVEL_EFFECTS, raw, edit_y, edges, config)
    if size == ActionSize.BEAT or g.residual_db <= config.split_db:
        return [(beat, size, g)]
    part = ActionSize(size - 1) if size != ActionSize.BAR else ActionSize.BEAT
    n = SIZE_BEATS[part]
    pieces = []
    for b in range(beat, beat + SIZE_BEATS[size], n):
        at = pos + int(edges[b]) - int(edges[beat])
        pieces += _level_pieces(b, part, at, raw, edit_y, edges, config)
    split = 10.0 * np.log10(np.mean([10.0 ** (q.residual_db / 10.0) for _, _, q in pieces]))
    logger.debug("beat %d %s: whole %.1f dB, parts %.1f dB", beat, size.name, g.residual_db, split)
    return pieces if split <= g.residual_db - config.split_gain_db else [(beat, size, g)]


class _Walker:
    """Follows the state machine and the edit's sample positions, as the renderer lays them."""

    def __init__(self, state: EditState, edges: np.ndarray) -> None:
        self.state, self.edges = state, edges
        self.pos = 0
        self.out_beats: list[int] = []

    def take(self, t: ActionType, p: Parsed, a: ActionAmount) -> None:
        kind = _T.KEEP if t in _FAMILIES else t
        self.state, segs = step(
            self.state, kind, p.size, p.amount if kind == t else ActionAmount.NEUTRAL
        )
        rate = _rate(t, a)
        for seg in segs:
            for _ in range(seg.repeats):
                self._lay(seg.start_beat, seg.end_beat, seg.from_output, rate)

    def _lay(self, a: int, b: int, from_output: bool, rate: float) -> None:
        if from_output:
            ob = [*self.out_beats, self.pos]
            starts = [ob[k] - ob[a] for k in range(a, b)]
            length = ob[b] - ob[a]
        else:
            s = int(self.edges[a])
            starts = [round((int(self.edges[k]) - s) / rate) for k in range(a, b)]
            length = round((int(self.edges[b]) - s) / rate)
        self.out_beats += [self.pos + o for o in starts]
        self.pos += length


def _rate(t: ActionType, a: ActionAmount) -> float:
    from editorbot.editing.actions import amount_value

    return amount_value(t, a) if t in (_T.SPEED_UP, _T.SPEED_DOWN) else 1.0


def _beat_confidence(al: Alignment, n_beats: int) -> np.ndarray:
    """[shape=(N,)] lowest alignment confidence of any unit playing each raw beat (1: none)."""
    conf = np.ones(n_beats)
    for u in al.units:
        conf[u.beat] = min(conf[u.beat], al.confidence(u))
    return conf


def _decision_confidence(p: Parsed, conf: np.ndarray) -> float:
    n = SIZE_BEATS[p.size]
    span = conf[p.beat : p.beat + n]
    c = float(span.min()) if len(span) else 1.0
    return c / (1.0 + p.mismatches)


def _effect_confidence(residual_db: float, margin_db: float, ok_db: float) -> float:
    """[0..1] 1 when the resynthesis is near exact and clearly better than the runner-up."""
    fit = float(np.clip((0.0 - residual_db) / (0.0 - ok_db), 0.0, 1.0))
    return fit * float(np.clip(margin_db / 3.0, 0.0, 1.0))


def _meta(decisions: list[Decision], parsed: list[Parsed], config: LabelConfig) -> dict[str, Any]:
    low = [
        {
            "beat": d.beat,
            "type": d.type.name,
            "n_beats": SIZE_BEATS[d.size],
            "confidence": d.confidence,
        }
        for d in decisions
        if d.confidence < config.low_confidence
    ]
    return {
        "source": "editorbot labels (alignment)",
        "mean_confidence": float(np.mean([d.confidence for d in decisions])) if decisions else 1.0,
        "low_confidence": low,
        "mismatched_beats": int(sum(p.mismatches for p in parsed)),
        "config": asdict(config),
    }


def _faster_level(
    dl: DecisionList, raw: Audio, edit: Audio, config: LabelConfig, name: str
) -> DecisionList:
    """``dl``, or the labels on the grid at twice the tempo where those re-render the edit
    more exactly (a tracked tempo below ``double_below_bpm`` may be half the editor's).

    The edit decides the metrical level: on half the editor's tempo its one-beat cuts fall
    inside the grid's beats, which no decision can express, and the re-rendered labels leave
    whole beats unexplained; on the right level they re-render the edit to float rounding.
    """
    from editorbot.editing.align_grid import doubled_grid

    times = np.asarray(dl.beat_times, dtype=float)
    if len(times) < 2 or 60.0 / float(np.median(np.diff(times))) >= config.double_below_bpm:
        return dl
    fast = label_pair(
        raw, edit, beat_times=doubled_grid(times, duration_sec=raw.duration_sec),
        downbeat_phase=(2 * dl.downbeat_phase) % 4, config=config, name=name,
    )  # fmt: skip
    slow_db, fast_db = _rerender_db(dl, raw, edit), _rerender_db(fast, raw, edit)
    logger.debug("%s: re-rendered to %.1f dB at the tracked tempo, %.1f at twice", name,
                 slow_db, fast_db)  # fmt: skip
    return fast if fast_db < slow_db - config.level_margin_db else dl


def _rerender_db(dl: DecisionList, raw: Audio, edit: Audio) -> float:
    """[dB] what the edit has that rendering ``dl`` on ``raw`` does not, relative to the edit."""
    from editorbot.editing.align_effects import residual_db
    from editorbot.editing.render import render_decision_list

    y, target = render_decision_list(raw, dl).y, _match_layout(edit, raw)
    n = max(y.shape[1], target.shape[1])  # a length mismatch counts as unexplained audio
    y, target = (np.pad(x, ((0, 0), (0, n - x.shape[1]))) for x in (y, target))
    return residual_db(y, target, 0)


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

    name = raw_path.stem.removesuffix("_raw")
    raw, edit = load_audio(raw_path), load_audio(edit_path)
    if grid_path is not None:
        grid = DecisionList.load(grid_path)
        beat_times, phase = np.asarray(grid.beat_times, dtype=float), grid.downbeat_phase
    else:
        from editorbot.audio.beats import track_beats
        from editorbot.editing.align_grid import smoothed_grid

        bg = track_beats(analysis_signal(raw), sr=AudioConfig().analysis_sr, name=str(raw_path))
        beat_times, phase = smoothed_grid(bg.beat_times), bg.downbeat_phase
    dl = label_pair(
        raw, edit, beat_times=beat_times, downbeat_phase=phase, config=config, name=name
    )
    if grid_path is None:
        dl = _faster_level(dl, raw, edit, config or LabelConfig(), name)
    dl.save(out_path)
    return {
        "name": name,
        "decisions": len(dl.decisions),
        "mean_confidence": dl.meta["mean_confidence"],
        "low_confidence": len(dl.meta["low_confidence"]),
    }
