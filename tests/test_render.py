"""The renderer on synthetic audio with known answers: lengths, bit-exactness, each effect."""

from __future__ import annotations

import numpy as np
import pytest

from editorbot.editing import dsp
from editorbot.editing.actions import (
    ActionAmount,
    ActionSize,
    ActionType,
    amount_value,
    valid_amounts,
)
from editorbot.editing.decisions import Decision
from editorbot.editing.render import RenderConfig, render
from editorbot.errors import ParameterError

A, S, T = ActionAmount, ActionSize, ActionType
SR = 22050  # half rate keeps the tests fast; nothing in the renderer depends on the rate
SPB = SR // 2  # [samples/beat] at 120 BPM
H = round(RenderConfig().crossfade_ms * 1e-3 * SR / 2)  # [samples] half an equal-power fade


def _grid(n_beats, jitter=0):
    """Beat starts with uneven beat lengths (so lengths cannot come out right by accident)."""
    lengths = SPB + (np.arange(n_beats) % 3 - 1) * jitter
    return np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64), int(lengths.sum())


def _click_track(n_beats, channels=2, jitter=0):
    beats, L = _grid(n_beats, jitter)
    y = np.zeros((channels, L), np.float32)
    y[:, beats] = 1.0
    return y, beats


def _sine(freq, n_beats, channels=1, amp=0.5):
    beats, L = _grid(n_beats)
    y = amp * np.sin(2 * np.pi * freq * np.arange(L) / SR)
    return np.repeat(y[None].astype(np.float32), channels, 0), beats


def _music(n_beats, seed=0):
    """Chords of sines with beat-synchronous envelopes and noise bursts: jumps at seams matter."""
    rng = np.random.default_rng(seed)
    beats, L = _grid(n_beats, jitter=300)
    t = np.arange(L) / SR
    y = sum(0.15 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in (110, 165, 220, 330))
    y = y + 0.05 * rng.standard_normal(L) * np.exp(-((t * 2) % 1) * 8)
    return np.stack([y, np.roll(y, 37)]).astype(np.float32), beats


def _dec(*items):
    return [Decision(b, t, s, a) for b, t, s, a in items]


def _render(y, beats, *items):
    return render(y, sr=SR, beat_samples=beats, decisions=_dec(*items))


def _seg_len(beats, L, a, b):
    edges = np.append(beats, L)
    edges[0] = 0
    return int(edges[b] - edges[a])


def test_issue_check_keep_cut_loop_is_twelve_beats():
    y, beats = _click_track(12)
    r = _render(
        y,
        beats,
        (0, T.KEEP, S.BAR, A.NEUTRAL),
        (4, T.CUT, S.BAR, A.NEUTRAL),
        (8, T.LOOP, S.BAR, A.NEUTRAL),
    )
    # Fades sit on the seam and never change the length: exactly 12 beats, not "about".
    assert r.y.shape == (2, 12 * SPB)
    np.testing.assert_array_equal(r.out_beat_samples, np.arange(12) * SPB)


@pytest.mark.parametrize(
    ("items", "beat_ranges"),
    [
        ([(0, T.KEEP, S.BAR, A.NEUTRAL), (4, T.CUT, S.TWO_BARS, A.NEUTRAL)], [(0, 4), (12, 24)]),
        ([(0, T.LOOP, S.BAR, A.POS_LARGE)], [(0, 4)] * 4 + [(4, 24)]),
        ([(0, T.REORDER, S.BAR, A.NEUTRAL)], [(4, 24), (0, 4)]),
        ([(1, T.SKIP, S.PHRASE, A.NEUTRAL)], [(0, 1), (16, 24)]),
        ([(0, T.SWAP_NEXT, S.BAR, A.NEUTRAL)], [(4, 8), (0, 4), (8, 24)]),
        ([(8, T.JUMP_BACK, S.BAR, A.NEG_SMALL)], [(0, 8), (0, 4), (8, 24)]),  # k = 8
    ],
)
def test_structural_lengths_are_exact_on_an_uneven_grid(items, beat_ranges):
    y, beats = _click_track(24, jitter=200)
    L = y.shape[1]
    r = _render(y, beats, *items)
    expected = sum(_seg_len(beats, L, a, b) for a, b in beat_ranges)
    assert r.y.shape == (2, expected)
    assert [(s.beat_start, s.beat_end) for s in r.segments] == beat_ranges
    for s in r.segments:  # the map: output and source lengths agree for structural types
        assert s.out_end - s.out_start == s.raw_end - s.raw_start


def test_repeat_prev_replays_the_last_output_beats():
    y, beats = _music(16)
    r = _render(y, beats, (0, T.KEEP, S.BAR, A.NEUTRAL), (4, T.REPEAT_PREV, S.BEAT, A.NEUTRAL))
    L = y.shape[1]
    n3, n4 = _seg_len(beats, L, 3, 4), _seg_len(beats, L, 0, 4)
    seg = r.segments[1]
    assert seg.from_output and seg.out_end - seg.out_start == n3
    # Away from the two seam fades the copy is exact.
    np.testing.assert_array_equal(r.y[:, n4 + H : n4 + n3 - H], y[:, n4 - n3 + H : n4 - H])
    assert r.y.shape[1] == L - _seg_len(beats, L, 4, 5) + n3


def test_contiguous_keeps_are_bit_identical():
    y, beats = _music(24)
    r = _render(
        y,
        beats,
        (0, T.KEEP, S.BAR, A.NEUTRAL),
        (4, T.KEEP, S.BEAT, A.NEUTRAL),
        (5, T.LOOP, S.BAR, A.NEUTRAL),
        (13, T.KEEP, S.TWO_BARS, A.NEUTRAL),
    )
    n9 = _seg_len(beats, y.shape[1], 0, 9)
    # KEEP, KEEP, first LOOP pass: one contiguous stretch of source, so no fade at all.
    np.testing.assert_array_equal(r.y[:, : n9 - H], y[:, : n9 - H])
    plain = _render(y, beats, (0, T.KEEP, S.TWO_BARS, A.NEUTRAL))  # rest kept as gap
    np.testing.assert_array_equal(plain.y, y)


def _smooth(n_beats):
    """Detuned chords, no noise: small sample-to-sample steps, so a hard cut would show."""
    beats, L = _grid(n_beats, jitter=300)
    t = np.arange(L) / SR
    y = sum(0.2 * np.sin(2 * np.pi * f * t + f) for f in (110, 167, 223, 331))
    return np.stack([y, np.roll(y, 37)]).astype(np.float32), beats


@pytest.mark.parametrize(("crossfade_ms", "clicks"), [(10.0, False), (0.05, True)])
def test_no_clicks_at_any_seam(crossfade_ms, clicks):
    y, beats = _smooth(48)
    own = np.abs(np.diff(y, axis=1)).max()  # the signal's own largest sample-to-sample jump
    rng = np.random.default_rng(0)
    items, beat = [], 0
    for t in rng.choice([T.KEEP, T.CUT, T.LOOP, T.SWAP_NEXT, T.GAIN, T.EQ_LOW, T.REVERSE], 12):
        a = valid_amounts(t)[0]
        items.append((beat, t, S.BEAT, a))
        beat += 2 if t == T.SWAP_NEXT else 1
    cfg = RenderConfig(crossfade_ms=crossfade_ms, ramp_ms=crossfade_ms / 2)
    r = render(y, sr=SR, beat_samples=beats, decisions=_dec(*items), config=cfg)
    worst = max(
        np.abs(np.diff(r.y[:, s.out_start - 3 * H : s.out_start + 3 * H], axis=1)).max()
        for s in r.segments[1:]
    )
    # Gains in the list only attenuate (NEG_LARGE). Equal-power weights sum to at most √2
    # (cos + sin at the centre), so two in-phase signals may step √2 × their own; 1.5 leaves
    # room for the window's slope. The control, a 1-sample "fade", shows the check can fail:
    # a hard jump between unrelated phases is many times the signal's own step.
    assert (worst > 3 * own) if clicks else (worst <= 1.5 * own)


def _interior(r, seg, margin=2 * H):
    return r.y[:, seg.out_start + margin : seg.out_end - margin]


def _rms(x):
    return float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2)))


def _freq(x):
    """[Hz] strongest frequency, parabolic-interpolated (sub-bin accuracy on a pure sine)."""
    X = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    k = int(np.argmax(X[1:-1])) + 1
    a, b, c = np.log(X[k - 1 : k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * SR / len(x)


@pytest.mark.parametrize("amount", [A.NEG_LARGE, A.POS_LARGE])
def test_gain_by_rms(amount):
    y, beats = _sine(440, 12)
    r = _render(y, beats, (4, T.GAIN, S.BAR, amount))
    got = 20 * np.log10(_rms(_interior(r, r.segments[1])) / _rms(y))
    assert got == pytest.approx(amount_value(T.GAIN, amount), abs=0.01)  # pure scaling: exact


@pytest.mark.parametrize(("t", "amount"), [(T.PITCH_UP, A.POS_LARGE), (T.PITCH_DOWN, A.NEG_SMALL)])
def test_pitch_by_sine_frequency(t, amount):
    y, beats = _sine(440, 12)
    r = _render(y, beats, (4, t, S.BAR, amount))
    seg = r.segments[1]
    assert seg.out_end - seg.out_start == 4 * SPB  # duration kept
    want = 440 * 2 ** (amount_value(t, amount) / 12)
    # 5 cents: the ratio is rounded to p/q with q <= 32 (about 1 cent) plus vocoder smearing.
    assert 1200 * abs(np.log2(_freq(_interior(r, seg, 2048)[0]) / want)) < 5


@pytest.mark.parametrize(("t", "amount"), [(T.SPEED_UP, A.POS_LARGE), (T.SPEED_DOWN, A.NEG_LARGE)])
def test_speed_by_duration_with_pitch_kept(t, amount):
    y, beats = _sine(440, 12)
    r = _render(y, beats, (4, t, S.BAR, amount))
    seg, rate = r.segments[1], amount_value(t, amount)
    assert seg.out_end - seg.out_start == round(4 * SPB / rate)
    assert r.out_beat_samples[5] - r.out_beat_samples[4] == round(SPB / rate)
    # 5 cents: the phase vocoder keeps a steady sine's pitch to well under a cent.
    assert 1200 * abs(np.log2(_freq(_interior(r, seg, 2048)[0]) / 440)) < 5


def test_reverse_equals_the_flipped_segment():
    y, beats = _music(12)
    r = _render(y, beats, (4, T.REVERSE, S.BAR, A.NEUTRAL))
    s = r.segments[1]
    flipped = y[:, s.raw_start : s.raw_end][:, ::-1]
    np.testing.assert_array_equal(r.y[:, s.out_start + H : s.out_end - H], flipped[:, H:-H])


def _band_db(x, lo, hi):
    X = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    return 10 * np.log10(X[(f >= lo) & (f < hi)].sum())


@pytest.mark.parametrize(
    ("t", "band", "other"),
    [(T.EQ_LOW, (20, 60), (3000, 6000)), (T.EQ_HIGH, (8000, 10000), (100, 400))],
)
def test_eq_by_band_energy(t, band, other):
    rng = np.random.default_rng(0)
    beats, L = _grid(12)
    y = (0.1 * rng.standard_normal((1, L))).astype(np.float32)
    r = _render(y, beats, (4, t, S.BAR, A.POS_LARGE))
    seg = r.segments[1]
    out, src = _interior(r, seg)[0], y[0, seg.raw_start + 2 * H : seg.raw_end - 2 * H]
    # Deep in the shelf the boost is the full +6 dB; 1 dB covers the shelf's slope at the
    # band edge. Far from the corner the level stays within 1 dB.
    assert _band_db(out, *band) - _band_db(src, *band) == pytest.approx(6.0, abs=1.0)
    assert abs(_band_db(out, *other) - _band_db(src, *other)) < 1.0


@pytest.mark.parametrize("t", [T.FADE_IN, T.FADE_OUT])
def test_fades_are_monotone(t):
    beats, L = _grid(12)
    y = np.full((1, L), 0.5, np.float32)
    r = _render(y, beats, (4, t, S.BAR, A.POS_LARGE))
    env = _interior(r, r.segments[1])[0]
    steps = np.diff(env) if t == T.FADE_IN else -np.diff(env)
    assert (steps >= 0).all() and steps.sum() > 0.4  # 0.5 -> ~0 over the bar


def test_fade_curve_reaches_its_depth():
    c = dsp.fade_curve(1000, depth_db=amount_value(T.FADE_IN, A.NEG_LARGE), fade_in=True)
    assert 20 * np.log10(c[0]) == pytest.approx(-6.0, abs=0.05)  # half-sample offset only
    assert c[-1] == pytest.approx(1.0, abs=1e-5)


def _harmonic_ratio(x, f0):
    X = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    k = round(f0 * len(x) / SR)
    harm = sum(X[m * k - 2 : m * k + 3].sum() for m in (2, 3, 4, 5))
    return harm / X[k - 2 : k + 3].sum()


def test_distortion_raises_harmonics():
    y, beats = _sine(220, 12)
    r = _render(y, beats, (4, T.DISTORTION, S.BAR, A.NEUTRAL))
    seg = r.segments[1]
    src = y[0, seg.raw_start + 2 * H : seg.raw_end - 2 * H]
    # A pure sine has harmonics only at window leakage (~1e-4); overdrive adds > 5 %.
    assert _harmonic_ratio(_interior(r, seg)[0], 220) > 0.05 > 50 * _harmonic_ratio(src, 220)


def test_reverb_lengthens_decay():
    beats, L = _grid(12)
    y = np.zeros((1, L), np.float32)
    y[0, beats] = 0.8
    r = _render(y, beats, (4, T.REVERB, S.BAR, A.POS_LARGE))
    seg = r.segments[1]
    late = r.y[0, seg.out_start + SPB // 2 : seg.out_start + SPB - 2 * H]  # second half-beat
    # Dry clicks leave exact silence between beats; a 2.5 s RT60 is only ~6 dB down
    # half a beat later, so the tail is far above silence.
    assert _rms(late) > 1e-3 and _rms(y[0, SPB // 2 : SPB - 2 * H]) == 0.0


def test_every_type_changes_the_audio_and_keeps_rate_and_channels():
    y, beats = _music(16)
    for t in ActionType:
        if t == T.KEEP:
            continue
        # Beat 4 has 4 beats behind it: only JUMP_BACK's smallest k (4 beats) is valid there.
        amount = valid_amounts(t)[0 if t == T.JUMP_BACK else -1]
        items = [(4, t, S.BAR, amount)]
        r = _render(y, beats, *items)
        assert r.y.dtype == np.float32 and r.y.shape[0] == 2 and r.sr == SR
        same = r.y.shape == y.shape and np.array_equal(r.y, y)
        assert not same, t.name


def test_bad_grid_is_one_clear_error():
    y, beats = _click_track(8)
    with pytest.raises(ParameterError, match="must increase strictly"):
        render(y, sr=SR, beat_samples=beats[::-1], decisions=[])
    with pytest.raises(ParameterError, match="does not belong to this audio"):
        render(y, sr=SR, beat_samples=beats * 10, decisions=[])


def test_cli_issue_check_on_files(tmp_path, capsys):
    """120 BPM click track, KEEP BAR, CUT BAR, LOOP BAR (2 repeats) -> 12 beats, via the CLI."""
    from editorbot.audio.io import load_audio, write_audio
    from editorbot.cli import main
    from editorbot.editing.decisions import DecisionList

    sr = 44100
    beats = np.arange(12) * (sr // 2)
    y = np.zeros((2, 12 * sr // 2), np.float32)
    y[:, beats] = 0.9
    raw = write_audio(tmp_path / "click.wav", y, sr=sr)
    dl = DecisionList(
        sr,
        beats / sr,
        tuple(
            _dec(
                (0, T.KEEP, S.BAR, A.NEUTRAL),
                (4, T.CUT, S.BAR, A.NEUTRAL),
                (8, T.LOOP, S.BAR, A.NEUTRAL),
            )
        ),
    )
    dl.save(tmp_path / "d.json")
    out = tmp_path / "out.wav"
    assert (
        main(["render", str(raw), "--decisions", str(tmp_path / "d.json"), "--out", str(out)]) == 0
    )
    edited = load_audio(out, check_duration=False)
    crossfade = round(RenderConfig().crossfade_ms * 1e-3 * sr)
    assert edited.sr == sr and edited.n_channels == 2
    assert abs(edited.n_samples - 12 * sr // 2) <= crossfade  # the issue's bound; it is exact
    # Refuses to overwrite the input; one error line, exit 1, the file unchanged.
    args = ["render", str(raw), "--decisions", str(tmp_path / "d.json"), "--out", str(raw)]
    assert main(args) == 1
    assert "choose another --out" in capsys.readouterr().err
    np.testing.assert_array_equal(load_audio(raw, check_duration=False).y, y)


def test_cli_bad_decisions_is_one_line(tmp_path, capsys):
    from editorbot.audio.io import write_audio
    from editorbot.cli import main

    y, beats = _click_track(8)
    raw = write_audio(tmp_path / "r.wav", y, sr=SR)
    bad = tmp_path / "d.json"
    bad.write_text(
        '{"version": 1, "sample_rate": 22050, "beat_times": [0.0, 0.5],'
        ' "decisions": [{"beat": 0, "type": "WOBBLE"}]}'
    )
    assert (
        main(["render", str(raw), "--decisions", str(bad), "--out", str(tmp_path / "o.wav")]) == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown type 'WOBBLE'" in err[0] and str(bad) in err[0]
    assert not (tmp_path / "o.wav").exists()


def test_random_valid_edits_render_consistently():
    """Random valid sequences of every type: the map tiles the output, beats stay in order."""
    from editorbot.editing.actions import action_masks, initial_state, step
    from editorbot.editing.decisions import decisions_from_actions

    y, beats = _music(40, seed=1)
    rng = np.random.default_rng(2)
    for _ in range(3):
        state, actions = initial_state(len(beats)), []
        while not state.done:
            tm, sm, am = action_masks(state)
            t = int(rng.choice(np.flatnonzero(tm)))
            s = int(rng.choice(np.flatnonzero(sm[t, :2])))  # BEAT or BAR: many seams
            a = int(rng.choice(np.flatnonzero(am[t])))
            actions.append((t, s, a))
            state, _ = step(state, t, s, a)
        dl = decisions_from_actions(np.array(actions), n_beats=len(beats), sample_rate=SR)
        r = render(y, sr=SR, beat_samples=beats, decisions=dl)
        starts = [s.out_start for s in r.segments]
        assert starts[0] == 0 and r.segments[-1].out_end == r.y.shape[1]
        assert all(
            p.out_end == q.out_start for p, q in zip(r.segments[:-1], r.segments[1:], strict=True)
        )
        n_out = state.n_output_beats + sum(p.n_beats for p in state.deferred)
        assert len(r.out_beat_samples) == n_out
        assert np.all(np.diff(r.out_beat_samples) > 0) and np.isfinite(r.y).all()


def test_render_decision_list_tracks_beats_only_when_absent(tmp_path):
    from editorbot.audio.io import Audio
    from editorbot.editing.decisions import DecisionList
    from editorbot.editing.render import render_decision_list
    from editorbot.errors import DatasetError

    y, beats = _music(32)
    audio = Audio(y=y, sr=SR, path=tmp_path / "a.wav")
    cut = _dec((4, T.CUT, S.BAR, A.NEUTRAL))
    given = render_decision_list(audio, DecisionList(SR, beats / SR, tuple(cut)))
    assert given.y.shape[1] == y.shape[1] - _seg_len(beats, y.shape[1], 4, 8)
    tracked = render_decision_list(audio, DecisionList(SR, None, tuple(cut)))
    # A tracked grid is not the known one; one bar of 4 beats is still cut, give or take a
    # beat's length (tracker phase/tempo error), so the output is 28 ± 1 beats long.
    assert abs(tracked.y.shape[1] - 28 * SPB) <= SPB
    wrong = DecisionList(SR, np.arange(32) * 10.0, tuple(cut))  # grid of a 5-minute track
    with pytest.raises(DatasetError, match=r"a\.wav: beat_samples must increase strictly inside"):
        render_decision_list(audio, wrong)


@pytest.mark.parametrize("t", [T.PITCH_UP, T.SPEED_DOWN, T.REVERB, T.REVERSE])
def test_one_segment_render_is_the_body_the_renderer_lays(t):
    """``render_segment`` (and the aligner's ``render_like``, which resynthesises candidates
    with it) is what ``render`` places, under any RenderConfig: the body between the seams'
    fades is the same samples."""
    from editorbot.editing.align_effects import render_like
    from editorbot.editing.render import half_fades, render_segment, segment_edges

    y, beats = _music(8)
    config = RenderConfig(crossfade_ms=20.0, n_fft=1024, hop_length=256, reverb_wet=0.3, seed=7)
    amount = valid_amounts(t)[-1] if valid_amounts(t) else A.NEUTRAL
    decisions = _dec((0, T.KEEP, S.BAR, A.NEUTRAL), (4, t, S.BEAT, amount),
                     (5, T.KEEP, S.BEAT, A.NEUTRAL))  # fmt: skip
    result = render(y, sr=SR, beat_samples=beats, decisions=decisions, config=config)
    seg = next(s for s in result.segments if s.type == t)
    edges = segment_edges(beats, y.shape[1])
    s, e = int(edges[4]), int(edges[5])
    full = render_segment(y, t, amount, sr=SR, raw_start=s, raw_end=e, config=config)
    body = render_like(y, t, amount, sr=SR, raw_start=s, raw_end=e, config=config)
    H = max(half_fades(config, SR))
    assert body.shape[1] == seg.out_end - seg.out_start == full.shape[1] - 2 * H
    np.testing.assert_array_equal(body, full[:, H:-H])
    h = H  # both seams are jumps or effect changes: at most H samples of fade on each side
    placed = result.y[:, seg.out_start + h : seg.out_end - h]
    np.testing.assert_array_equal(placed, body[:, h:-h])  # the same samples, bit for bit
    if t != T.REVERSE:  # the effect depends on the config: another config, other samples
        other = render_like(y, t, amount, sr=SR, raw_start=s, raw_end=e)
        assert not np.array_equal(other, body)


def test_segment_layout_is_where_the_render_puts_each_beat():
    """The aligner lays an edit with segment_layout alone; it must be the render's map."""
    from editorbot.editing.decisions import DecisionList, plan_segments
    from editorbot.editing.render import segment_edges, segment_layout

    y, beats = _click_track(24, jitter=300)  # beat lengths SPB - 300, SPB, SPB + 300, ...
    items = (
        (4, T.REVERSE, S.TWO_BARS, A.NEUTRAL),
        (12, T.REPEAT_PREV, S.BEAT, A.NEUTRAL),  # replays the reversed bars' last output beat
        (13, T.SPEED_UP, S.BAR, A.POS_LARGE),
        (17, T.LOOP, S.BAR, A.NEUTRAL),
    )
    r = _render(y, beats, *items)
    edges = segment_edges(beats, y.shape[1])
    out_beats: list[int] = []
    pos = 0
    for _, seg in plan_segments(DecisionList(SR, None, tuple(_dec(*items))), len(beats)):
        offsets, M = segment_layout(edges, seg, out_beats=out_beats, pos=pos)
        for _ in range(seg.repeats):
            out_beats += (pos + offsets).tolist()
            pos += M
    assert pos == r.y.shape[1]
    np.testing.assert_array_equal(out_beats, r.out_beat_samples)
    # Reversed bars play their last raw beat first: the output beat they end on is raw beat 4,
    # and REPEAT_PREV replays that beat's length, not beat 11's.
    repeat = next(s for s in r.segments if s.from_output)
    assert repeat.out_end - repeat.out_start == edges[5] - edges[4] != edges[12] - edges[11]
