"""Raw↔edit alignment: the jump DP, the parse into decisions, effect resynthesis, the CLI.

Known answers: edits built from a known beat order (DP), decision lists run through the real
state machine (parse), real renders of demo songs (end to end, through Ray).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from editorbot.editing.actions import (
    ActionAmount,
    ActionSize,
    ActionType,
    action_masks,
    finish,
    initial_state,
    is_structural,
    step,
)
from editorbot.editing.align import Variant, unit_costs
from editorbot.editing.align_dp import jump_dp
from editorbot.editing.align_effects import EffectConfig, best_effect, exact_beats
from editorbot.editing.align_parse import OutBeat, parse_output
from editorbot.editing.decisions import Decision, DecisionList
from editorbot.errors import DatasetError
from editorbot.evaluation.label_metrics import LabelScores, beat_labels

T = ActionType


def test_jump_dp_recovers_cuts_loops_and_reorders():
    rng = np.random.default_rng(0)
    n_beats, frames_per_beat, F = 40, 8, 6
    R = rng.normal(size=(F, n_beats * frames_per_beat)).astype(np.float32)
    # Cut 8..11, loop 12..15 twice, jump back to 2, a reorder (20..23 played after 24..27).
    order = [*range(0, 8), *range(12, 16), *range(12, 16), *range(2, 4), *range(24, 28)]
    order += [*range(20, 24), *range(28, 40)]
    E = np.concatenate([R[:, b * frames_per_beat : (b + 1) * frames_per_beat] for b in order], 1)
    beat_frames = np.arange(n_beats + 1, dtype=float) * frames_per_beat
    variants = (Variant(T.KEEP, 0.0),)
    cost, dur = unit_costs({"dry": R}, E, beat_frames, variants, P=4)
    units = jump_dp(
        cost, dur, reverse_variants=np.array([False]), jump_penalty=1.0, switch_penalty=0.5
    )
    # Exact: the edit is made of the raw features themselves, so the path is unique.
    assert [u.beat for u in units] == order
    assert units[-1].end_frame == E.shape[1]


def test_jump_dp_does_not_read_a_plain_run_as_stretched():
    # Each beat is 9 constant frames; the edit copies the raw but every beat's last frame is
    # off by a little (a seam). A ×1.1 stretch lasts 8.2 frames, so its sample points skip that
    # frame; rounded up to 9 frames a unit it would follow the plain run for free.
    rng = np.random.default_rng(4)
    n_beats, fpb = 24, 9
    R = np.repeat(rng.normal(size=(6, n_beats)), fpb, axis=1).astype(np.float32)
    E = R.copy()
    E[:, fpb - 1 :: fpb] += 0.2
    beat_frames = np.arange(n_beats + 1, dtype=float) * fpb
    variants = (Variant(T.KEEP, 0.0), Variant(T.SPEED_UP, 1.1, rate=1.1))
    cost, dur = unit_costs({"dry": R}, E, beat_frames, variants, P=6)
    kwargs = dict(reverse_variants=np.array([False, False]), jump_penalty=6.0, switch_penalty=0.6)
    plain = jump_dp(cost, dur, duration_penalty=1.0, **kwargs)
    # Exact: a stretched unit drifts 0.8 frame a beat (cost 0.8 > the seam's ~0.1 per beat).
    assert [u.variant for u in plain] == [0] * n_beats
    assert [u.beat for u in plain] == list(range(n_beats))
    # Without the penalty the stretched reading is the cheaper one: the test can fail.
    assert {u.variant for u in jump_dp(cost, dur, duration_penalty=0.0, **kwargs)} == {1}


def _random_edit(rng: np.random.Generator, n_beats: int):
    """A random valid decision sequence and the (raw beat, effect) sequence it outputs."""
    kinds = [t for t in T if is_structural(t)] + [T.GAIN]
    state, actions, segments = initial_state(n_beats), [], []
    while not state.done:
        type_mask, size_mask, amount_mask = action_masks(state)
        allowed = [t for t in kinds if type_mask[t]]
        t = allowed[rng.integers(len(allowed))] if rng.random() < 0.5 else T.KEEP
        t = t if type_mask[t] else allowed[0]
        s = int(rng.choice(np.flatnonzero(size_mask[t])))
        a = int(rng.choice(np.flatnonzero(amount_mask[t])))
        actions.append(Decision(state.cursor, T(t), ActionSize(s), ActionAmount(a)))
        state, segs = step(state, t, s, a)
        segments += segs
    out: list[OutBeat] = []
    for p in [*segments, *finish(state)]:
        for _ in range(p.repeats):
            for b in range(p.start_beat, p.end_beat):
                effect = T.GAIN if p.type == T.GAIN else T.KEEP
                out.append(out[b] if p.from_output else OutBeat(b, effect))
    return actions, out


def test_parse_reproduces_random_edits():
    rng = np.random.default_rng(3)
    scores = LabelScores()
    for _ in range(8):
        n_beats = int(rng.integers(40, 120))
        actions, out = _random_edit(rng, n_beats)
        parsed = parse_output(out, n_beats=n_beats)
        # Exact: some parse always reproduces the output, so none may be left unexplained.
        assert sum(p.mismatches for p in parsed) == 0
        times = np.arange(n_beats) * 0.5
        # The parse leaves effect amounts to resynthesis; any valid GAIN amount scores the type.
        amounts = {T.GAIN: ActionAmount.POS_SMALL}
        pred = [Decision(p.beat, p.type, p.size, amounts.get(p.type, p.amount)) for p in parsed]
        scores.add(
            beat_labels(DecisionList(44100, times, tuple(actions))),
            beat_labels(DecisionList(44100, times, tuple(pred))),
        )
    # Some edits have two equally short readings (SKIP to a bar line = CUT of the same beats,
    # KEEP + LOOP = JUMP_BACK + KEEP, KEEP + REPEAT_PREV = LOOP + CUT); per beat they cost a few
    # percent (measured 0.93 here). 0.9 leaves room for those ties and fails if the parse stops
    # telling the types apart.
    assert scores.summary()["type_accuracy"] >= 0.9


def test_parse_defers_a_tail_of_two_reorders_after_a_loop():
    """KEEP 16, LOOP x2 of 16 beats, KEEP 4, CUT 4, REORDER 4, KEEP 4, REORDER 4, KEEP 4: the
    tail (40-43 then 48-51) ascends across two runs and only its first run jumps back. Two
    parses that reach the same cursor but deferred different beats are different states: the
    one that deferred nothing must pay for the tail it cannot play, not take its place."""
    seq = [*range(16), *range(16, 32), *range(16, 32), *range(32, 36), *range(44, 48),
           *range(52, 56), *range(40, 44), *range(48, 52)]  # fmt: skip
    out = [OutBeat(b, T.KEEP) for b in seq]
    parsed = parse_output(out, n_beats=56)
    got = [(p.type, p.beat) for p in parsed if p.type != T.KEEP]
    assert got == [(T.LOOP, 16), (T.CUT, 36), (T.REORDER, 40), (T.REORDER, 48)]
    assert sum(p.mismatches for p in parsed) == 0


def test_best_effect_finds_the_amount_by_resynthesis():
    sr = 22050
    rng = np.random.default_rng(1)
    y_raw = (0.1 * rng.normal(size=(1, 3 * sr))).astype(np.float32)
    s, e = sr, 2 * sr
    from editorbot.editing import dsp

    y_edit = y_raw.copy()
    y_edit[:, s:e] = dsp.shelf_eq(y_raw[:, s:e], sr=sr, gain_db=-6.0, freq_hz=4000.0, low=False)
    guess = best_effect(
        y_raw, y_edit, sr=sr, raw_start=s, raw_end=e, edit_start=s,
        types=(T.GAIN, T.EQ_LOW, T.EQ_HIGH),
    )  # fmt: skip
    assert (guess.type, guess.amount) == (T.EQ_HIGH, ActionAmount.NEG_LARGE)
    # The filter restarts at the segment (no context), so the fit is not exact; -20 dB is ten
    # times below the edit's energy and far below a wrong candidate's (about -6 dB).
    assert guess.residual_db < -20.0


def test_best_effect_ranks_by_spectrum_when_no_waveform_fits():
    # A pitch-shifted bar of a chord, resynthesised from a raw start 5 ms off the editor's (a
    # tracked grid's error; 16 ms at its 99th percentile): the phase vocoder's frames start
    # elsewhere, so no candidate's waveform fits (ranked by waveform, +7 semitones wins here,
    # 2.8 dB against 4.9), but the spectrum still tells -5 semitones from +7 (same chroma).
    from editorbot.editing.align_effects import render_like

    sr = 22050
    t = np.arange(4 * sr) / sr
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) * np.exp(-(t % 0.5) * 4)
    y_raw = (0.1 * chord).astype(np.float32)[None]
    s, e = sr, 3 * sr
    body = render_like(y_raw, T.PITCH_DOWN, ActionAmount.POS_SMALL, sr=sr, raw_start=s, raw_end=e)
    y_edit = y_raw.copy()
    y_edit[:, s:e] = body
    off = round(0.005 * sr)
    guess = best_effect(
        y_raw, y_edit, sr=sr, raw_start=s - off, raw_end=e - off, edit_start=s - off,
        types=(T.PITCH_UP, T.PITCH_DOWN),
    )  # fmt: skip
    assert (guess.type, guess.amount) == (T.PITCH_DOWN, ActionAmount.POS_SMALL)
    # The waveform is far from exact (the reason for the spectral ranking): above -15 dB.
    assert guess.residual_db > EffectConfig().spectral_above_db


def test_exact_beats_finds_a_cut_the_alignment_missed():
    # Noise beats, so no two raw beats are alike; the edit plays 0..7, cuts a bar, plays 12..15.
    sr, beat_len, n_beats = 8000, 2000, 40
    rng = np.random.default_rng(5)
    y_raw = (0.1 * rng.normal(size=(1, n_beats * beat_len))).astype(np.float32)
    edges = np.arange(n_beats + 1) * beat_len
    order = [*range(0, 8), *range(12, 16)]
    y_edit = np.concatenate([y_raw[:, b * beat_len : (b + 1) * beat_len] for b in order], 1)
    at = 8 * beat_len  # where raw beat 12 starts in the edit
    # The alignment named beat 30 there (a similar-sounding bar far away) after raw beat 7.
    found = exact_beats(y_raw, y_edit, edges, 30, at, 7, 256, sr, EffectConfig())
    # Exact: the edit copies beat 12 sample for sample and no other beat resembles it.
    assert found == [12]
    # Beat 8 (the successor) is not what the edit plays there: nothing else may be claimed.
    assert exact_beats(y_raw, y_edit, edges, 8, at, 7, 256, sr, EffectConfig()) == [12]


def test_unrelated_and_impossible_edits_are_refused():
    from editorbot.editing.align import align

    sr = 22050
    rng = np.random.default_rng(2)
    t = np.arange(8 * sr) / sr
    y_raw = (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 2 * t) > 0)).astype(np.float32)
    beat_times = np.arange(16) * 0.5
    noise = (0.3 * rng.normal(size=8 * sr)).astype(np.float32)
    with pytest.raises(DatasetError, match="does not match the raw track"):
        align(y_raw, noise, sr=sr, beat_times=beat_times, name="pair_a")
    with pytest.raises(DatasetError, match="the edit language makes at most"):
        align(y_raw, np.tile(y_raw, 9), sr=sr, beat_times=beat_times, name="pair_b")


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    from editorbot.commands.demo_data import main

    d = tmp_path_factory.mktemp("demo")
    args = ["--out", str(d), "--tracks", "2", "--seed", "5"]
    assert main([*args, "--min-seconds", "20", "--max-seconds", "25"]) == 0
    return d


def _label_and_score(demo_dir, out, capsys, *extra: str) -> dict:
    """``editorbot labels`` then ``evaluate-labels --json`` on ``demo_dir``: the summary."""
    from editorbot.commands.evaluate_labels import main as evaluate
    from editorbot.commands.labels import main as labels

    assert labels(["--data-dir", str(demo_dir), "--out", str(out), "--no-progress", *extra]) == 0
    capsys.readouterr()
    assert evaluate(["--pred", str(out), "--truth", str(demo_dir / "truth"), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
@pytest.mark.ray
def test_labels_then_evaluate_meets_floors(demo_dir, tmp_path, capsys, ray_session):
    out = tmp_path / "labels"
    s = _label_and_score(demo_dir, out, capsys, "--grid-from", str(demo_dir / "truth"))
    # These two pairs measured 1.00 on every rate below (2026-11-23, true grids). Each floor
    # leaves room for one wrong 4-beat decision: 4 of 112 beats (type 0.96), 4 of the 64
    # structural beats (0.94), one of four effect types at F1 0.67 (macro 0.92), one bar's
    # amount (0.96). A broken alignment, parse or resynthesis falls far below (0.2-0.6 per
    # pair while developing).
    assert s["structural_accuracy"] >= 0.93
    assert s["type_accuracy"] >= 0.95
    assert s["effect_macro_f1"] >= 0.90
    assert s["amount_accuracy"] >= 0.95
    dl = json.loads((out / "demo_s5_000.json").read_text())
    assert {"low_confidence", "mean_confidence"} <= set(dl["meta"])


@pytest.mark.slow
@pytest.mark.ray
def test_labels_on_the_tracked_grid_meet_floors(demo_dir, tmp_path, capsys, ray_session):
    # Issue 4's done-when path, smaller: beats tracked from the raw audio, not the truth's.
    out = tmp_path / "labels"
    s = _label_and_score(demo_dir, out, capsys)
    # Measured 1.00 / 1.00 / 1.00 and amount 0.89 (2026-11-23; before the repeat and tail
    # fixes the 20 long demo pairs measured 0.89 / 0.81 structural / effect). Each floor
    # leaves room for one wrong 4-beat decision of the 112 beats, as above; the amount floor
    # one bar below the measured 0.89 (a tracked boundary 5-15 ms off still costs an amount).
    assert s["structural_accuracy"] >= 0.93
    assert s["type_accuracy"] >= 0.95
    assert s["effect_macro_f1"] >= 0.90
    assert s["amount_accuracy"] >= 0.85
    # A generated song's tracked beats only jitter (a few ms RMS): the grid was smoothed.
    meta = json.loads((out / "demo_s5_001.json").read_text())["meta"]
    assert meta["grid"] == "smoothed" and meta["grid_wobble_ms"] <= 8.0


@pytest.mark.slow
@pytest.mark.ray
def test_labels_skips_bad_pairs_with_one_line(demo_dir, tmp_path, capsys, ray_session):
    import shutil

    from editorbot.commands.labels import main as labels

    d = tmp_path / "data"
    shutil.copytree(demo_dir / "input", d / "input")
    shutil.copytree(demo_dir / "desired_output", d / "desired_output")
    # Pair 001's edit replaced by noise: unrelated audio.
    import soundfile as sf

    y, sr = sf.read(d / "desired_output" / "demo_s5_001_edit.wav")
    rng = np.random.default_rng(0)
    sf.write(d / "desired_output" / "demo_s5_001_edit.wav", 0.3 * rng.normal(size=y.shape), sr)
    args = ["--data-dir", str(d), "--out", str(tmp_path / "l"), "--no-progress"]
    assert labels([*args, "--grid-from", str(demo_dir / "truth")]) == 0
    err = capsys.readouterr().err
    assert "skipped demo_s5_001" in err and "does not match" in err
    assert (tmp_path / "l" / "demo_s5_000.json").exists()
    assert not (tmp_path / "l" / "demo_s5_001.json").exists()


def _fade_pair(fragmented: bool):
    """A 48-beat generated song and its edit ending in a two-bar fade-out (or, ``fragmented``,
    in the pieces the per-beat pass can read such a fade as: two kept beats, a one-bar fade,
    a kept beat and a gain)."""
    from editorbot.audio.io import Audio
    from editorbot.datasets.perform import synthesize
    from editorbot.datasets.song import SongConfig, compose
    from editorbot.editing.render import render_decision_list

    rng = np.random.default_rng([120, 3])
    cfg = SongConfig(min_seconds=20.0, max_seconds=24.0, bpm=120.0)
    song = compose(rng, config=cfg)
    raw = synthesize(song, sr=cfg.sr, rng=rng, peak=cfg.peak)
    beat_times = raw.beat_samples / raw.sr
    n = len(beat_times)
    body = [
        Decision(b, T.KEEP, ActionSize.BAR, ActionAmount.NEUTRAL, 1.0) for b in range(0, n - 8, 4)
    ]
    pieces = [
        Decision(n - 8, T.KEEP, ActionSize.BEAT, ActionAmount.NEUTRAL, 1.0),
        Decision(n - 7, T.KEEP, ActionSize.BEAT, ActionAmount.NEUTRAL, 1.0),
        Decision(n - 6, T.FADE_OUT, ActionSize.BAR, ActionAmount.POS_LARGE, 1.0),
        Decision(n - 2, T.KEEP, ActionSize.BEAT, ActionAmount.NEUTRAL, 1.0),
        Decision(n - 1, T.GAIN, ActionSize.BEAT, ActionAmount.NEG_LARGE, 1.0),
    ]
    fade = [Decision(n - 8, T.FADE_OUT, ActionSize.TWO_BARS, ActionAmount.POS_LARGE, 1.0)]
    audio = Audio(raw.y, raw.sr, None)
    chosen = tuple(body + (pieces if fragmented else fade))
    made = DecisionList(sample_rate=raw.sr, beat_times=beat_times, decisions=chosen)
    edit = render_decision_list(audio, made).y
    return audio, edit, beat_times, body, pieces


@pytest.mark.parametrize("fragmented", [False, True])
def test_a_run_one_longer_fade_explains_is_merged_into_it(fragmented: bool):
    from editorbot.editing.align_beats import beat_edges
    from editorbot.editing.align_resolve import ResolveConfig, _Context, _merged_level_runs

    raw, edit, beat_times, body, pieces = _fade_pair(fragmented)
    edges = beat_edges(beat_times, raw.sr, raw.n_samples)
    ctx = _Context(raw, edit, edges, 256, EffectConfig(), ResolveConfig())
    decisions = body + pieces  # what the per-beat pass read, for both edits
    starts = [int(edges[d.beat]) for d in decisions]  # nothing changes the length before
    merged = _merged_level_runs(decisions, starts, np.ones(len(beat_times)), ctx)
    n = len(beat_times)
    if fragmented:
        # The edit is those pieces: no one fade explains them exactly, nothing is merged.
        assert merged == decisions
    else:
        # Exact: the renderer's own two-bar fade re-renders the edit to float rounding.
        assert merged[: len(body)] == body
        tail = merged[len(body) :]
        assert [(d.beat, d.type, d.size) for d in tail] == [
            (n - 8, T.FADE_OUT, ActionSize.TWO_BARS)
        ]


def test_a_fade_in_misread_as_speed_changes_is_merged_into_the_fade():
    # The demo's fade-ins start near silence, where the per-beat pass can misread the beats'
    # lengths and call them speed changes (seen on a demo training pair: SPEED_DOWN, SPEED_UP,
    # SPEED_DOWN, KEEP over a one-bar fade-in, each explained at 0 confidence).
    from editorbot.audio.io import Audio
    from editorbot.editing.align_beats import beat_edges
    from editorbot.editing.align_resolve import ResolveConfig, _Context, _merged_level_runs
    from editorbot.editing.render import render_decision_list

    raw, _, beat_times, body, _ = _fade_pair(False)
    n = len(beat_times)
    fade = Decision(n - 8, T.FADE_IN, ActionSize.BAR, ActionAmount.POS_SMALL, 1.0)
    rest = Decision(n - 4, T.KEEP, ActionSize.BAR, ActionAmount.NEUTRAL, 1.0)
    made = DecisionList(sample_rate=raw.sr, beat_times=beat_times, decisions=(*body, fade, rest))
    edit = render_decision_list(Audio(raw.y, raw.sr, None), made).y
    misread = [
        Decision(n - 8, T.SPEED_DOWN, ActionSize.BEAT, ActionAmount.NEG_LARGE, 0.0),
        Decision(n - 7, T.SPEED_UP, ActionSize.BEAT, ActionAmount.NEG_SMALL, 0.0),
        Decision(n - 6, T.SPEED_DOWN, ActionSize.BEAT, ActionAmount.NEG_LARGE, 0.0),
        Decision(n - 5, T.KEEP, ActionSize.BEAT, ActionAmount.NEUTRAL, 0.9),
    ]
    edges = beat_edges(beat_times, raw.sr, raw.n_samples)
    ctx = _Context(raw, edit, edges, 256, EffectConfig(), ResolveConfig())
    decisions = [*body, *misread, rest]
    starts = [int(edges[d.beat]) for d in decisions]  # the fade keeps the raw's length
    merged = _merged_level_runs(decisions, starts, np.ones(n), ctx)
    tail = [(d.beat, d.type, d.size, d.amount) for d in merged[len(body) :]]
    # Exact: the renderer's own fade re-renders the bar to float rounding.
    assert tail == [
        (n - 8, T.FADE_IN, ActionSize.BAR, ActionAmount.POS_SMALL),
        (n - 4, T.KEEP, ActionSize.BAR, ActionAmount.NEUTRAL),
    ]
