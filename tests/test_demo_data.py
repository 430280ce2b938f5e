"""Tests of the demo-data generator: layout, exact re-render, determinism, styles, energy, tempo."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from editorbot.audio.io import load_audio
from editorbot.commands import demo_data
from editorbot.datasets.demo import DemoConfig, bar_levels, make_pair, plan_pair, track_name
from editorbot.datasets.perform import synthesize
from editorbot.datasets.song import Section, SongConfig, compose
from editorbot.datasets.styles import STYLES, EditContext, plan_edit
from editorbot.editing.actions import ActionType, initial_state, step
from editorbot.editing.decisions import DecisionList, decisions_from_actions
from editorbot.editing.render import render
from editorbot.errors import ParameterError

SR = 44100
# Short tracks keep the suite fast: 3 phrases at 160 BPM is 18 s; these are 3-5 phrases.
SHORT = ["--min-seconds", "20", "--max-seconds", "28"]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three pairs written through the real entry point (one per style, rotating)."""
    out = tmp_path_factory.mktemp("demo")
    assert demo_data.main(["--out", str(out), "--tracks", "3", "--seed", "0", *SHORT]) == 0
    return out


def test_layout_written(demo_dir: Path) -> None:
    names = [track_name(0, i) for i in range(3)]
    assert sorted(p.name for p in (demo_dir / "input").iterdir()) == [f"{n}_raw.wav" for n in names]
    styles = []
    for name in names:
        raw = load_audio(demo_dir / "input" / f"{name}_raw.wav")
        edit = load_audio(demo_dir / "desired_output" / f"{name}_edit.wav")
        assert (raw.sr, raw.n_channels, edit.sr, edit.n_channels) == (SR, 2, SR, 2)
        assert 15.0 < raw.duration_sec < 45.0  # 3-5 phrases of 16 beats at 80-160 BPM
        truth = json.loads((demo_dir / "truth" / f"{name}.json").read_text())
        meta = truth["meta"]
        assert {"style", "tempo_bpm", "key", "sections"} <= set(meta)
        assert len(truth["beat_times"]) == sum(s["n_beats"] for s in meta["sections"])
        assert meta["sections"][0]["label"] == "intro" and meta["sections"][-1]["label"] == "outro"
        styles.append(meta["style"])
    assert styles == list(STYLES)  # styles rotate over tracks
    # Atomic writes leave no temporary files behind.
    assert not [p for p in demo_dir.rglob(".*") if p.is_file()]


def test_render_reproduces_edit_exactly(demo_dir: Path) -> None:
    # Exact equality, no tolerance: the files are float WAV (bit-exact read-back), the truth
    # stores beat_times that round back to the synthesised sample positions, and the renderer
    # is deterministic.
    for i in range(3):
        name = track_name(0, i)
        raw = load_audio(demo_dir / "input" / f"{name}_raw.wav")
        dl = DecisionList.load(demo_dir / "truth" / f"{name}.json")
        beat_samples = dl.beat_samples()
        assert beat_samples is not None
        out = render(raw.y, sr=raw.sr, beat_samples=beat_samples, decisions=dl)
        edit = load_audio(demo_dir / "desired_output" / f"{name}_edit.wav")
        assert out.y.shape == edit.y.shape
        assert np.array_equal(out.y, edit.y)
        assert not np.array_equal(out.y[:, : raw.n_samples], raw.y[:, : out.y.shape[1]])


def test_deterministic_per_seed(demo_dir: Path) -> None:
    config = DemoConfig(song=SongConfig(min_seconds=20, max_seconds=28))
    pair = make_pair(0, 1, config=config)
    raw = load_audio(demo_dir / "input" / f"{track_name(0, 1)}_raw.wav")
    assert np.array_equal(pair.raw.y, raw.y)  # same seed: same samples as the CLI wrote
    truth = (demo_dir / "truth" / f"{track_name(0, 1)}.json").read_text()
    assert pair.decisions.to_json() + "\n" == truth
    other = plan_pair(1, 1, config=config)[1]
    assert other.y.shape != raw.y.shape or not np.array_equal(other.y, raw.y)


def test_all_action_types_appear_keep_dominant() -> None:
    # 30-40 s tracks have 5-7 phrases: every section label, so every rule of every style can
    # fire; 3 seeds per style cover the styles' random choices.
    config = DemoConfig(song=SongConfig(min_seconds=30, max_seconds=40))
    counts: Counter[str] = Counter()
    for seed in range(3):
        for i, style in enumerate(STYLES):
            dl = plan_pair(seed, i, style=style, config=config)[2]
            counts.update(d.type.name for d in dl.decisions)
    assert set(counts) == {t.name for t in ActionType}
    assert counts.most_common(1)[0][0] == "KEEP"


@pytest.mark.parametrize("seed", [0, 1])
def test_sections_differ_in_energy(seed: int) -> None:
    # 32 s at 150 BPM = 5 phrases: intro, verse, chorus, bridge, outro.
    rng = np.random.default_rng(seed)
    song = compose(rng, config=SongConfig(bpm=150.0, min_seconds=32.0, max_seconds=32.0))
    assert [s.label for s in song.sections] == ["intro", "verse", "chorus", "bridge", "outro"]
    raw = synthesize(song, sr=SR, rng=rng)
    bar_db = bar_levels(raw.y, raw.beat_samples)
    level = {
        s.label: float(np.mean(bar_db[s.start_beat // 4 : (s.start_beat + s.n_beats) // 4]))
        for s in song.sections
    }
    # By design the chorus adds parts and plays at full level. Measured over seeds 0-9 it is
    # 9.6-13 dB over the sparse intro, 6-11 dB over the outro, 4.9-8 dB over the drumless
    # bridge and 2.9-3.9 dB over the verse; the thresholds sit at about half the smallest.
    assert level["chorus"] == max(level.values())
    for label in ("intro", "outro", "bridge"):
        assert level["chorus"] - level[label] > 3.0, (label, level)
    assert level["chorus"] - level["verse"] > 1.5, level
    # Texture: the bridge has no drums, so its bars' low band (kick, < 150 Hz) is far weaker
    # than the verse's even though both have bass.
    assert _low_band_onsets(raw.y, raw.beat_samples, song, "verse") > 2.0 * _low_band_onsets(
        raw.y, raw.beat_samples, song, "bridge"
    )


def _low_band_onsets(y: np.ndarray, beat_samples: np.ndarray, song, label: str) -> float:
    """Mean positive change of low-band energy between 10 ms frames: kick drums make it large."""
    import librosa

    section = next(s for s in song.sections if s.label == label)
    a, b = beat_samples[section.start_beat], beat_samples[section.start_beat + section.n_beats - 1]
    S = np.abs(librosa.stft(y.mean(axis=0)[a:b], n_fft=2048, hop_length=441))
    low = S[: int(150 * 2048 / SR)].sum(axis=0)
    return float(np.maximum(np.diff(low), 0).mean())


def test_tempo_of_grid_matches_request() -> None:
    bpm = 97.3
    rng = np.random.default_rng(3)
    song = compose(rng, config=SongConfig(bpm=bpm, min_seconds=20.0, max_seconds=20.0))
    raw = synthesize(song, sr=SR, rng=rng)
    period = np.diff(raw.beat_samples)
    # Beats are rounded to whole samples: each period is within 1 sample of sr * 60 / bpm, and
    # their mean is exact to well under 0.01 BPM.
    assert np.all(np.abs(period - SR * 60.0 / bpm) <= 1.0)
    assert abs(60.0 * SR / period.mean() - bpm) < 0.01
    # The audio itself has that tempo (librosa's estimate, up to its usual octave ambiguity,
    # within 4%: its tempo bins are about 2% apart at this rate).
    import librosa

    estimate = float(librosa.feature.tempo(y=raw.y.mean(axis=0), sr=SR)[0])
    assert min(abs(estimate / (bpm * k) - 1) for k in (0.5, 1.0, 2.0)) < 0.04, estimate


def test_bad_input_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    cases = [
        (["--out", str(tmp_path), "--tracks", "0"], "--tracks must be at least 1, got 0"),
        (["--out", str(a_file), "--tracks", "1"], "f.txt: is a file, not a folder"),
        (
            ["--out", str(tmp_path), "--min-seconds", "50", "--max-seconds", "10"],
            "need 0 < min_seconds <= max_seconds, got 50.0, 10.0",
        ),
        (["--out", str(tmp_path), "--bpm", "500"], "bpm must be in [40, 240], got 500.0"),
    ]
    for argv, message in cases:
        assert demo_data.main(argv) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err  # one line, no traceback
    assert not list(tmp_path.glob("*/*.wav"))  # nothing written on bad input
    with pytest.raises(ParameterError, match="unknown style 'disco'"):
        DemoConfig(styles=("disco",))


def _context(labels: list[str], phrase_db: list[float]) -> EditContext:
    """A form of one phrase per label, every bar of a phrase at its level (no audio needed)."""
    sections = tuple(Section(label, 16 * i, 16) for i, label in enumerate(labels))
    return EditContext(sections=sections, bar_db=np.repeat(np.asarray(phrase_db, float), 4))


def test_styles_follow_content() -> None:
    labels = ["intro", "verse", "verse", "chorus", "bridge", "chorus", "outro"]
    rng = np.random.default_rng

    def decisions_at(style: str, ctx: EditContext, beat: int) -> list[str]:
        actions = plan_edit(style, ctx, rng(0))
        dl = decisions_from_actions(actions, n_beats=ctx.n_beats, sample_rate=SR)
        return [d.type.name for d in dl.decisions if d.beat == beat]

    # Radio drops a bridge 6 dB under the song's typical level and keeps one at that level.
    quiet = _context(labels, [-25, -18, -18, -14, -24, -14, -22])
    loud = _context(labels, [-25, -18, -18, -14, -16, -14, -22])
    assert decisions_at("radio", quiet, 64) == ["CUT"]
    assert decisions_at("radio", loud, 64) == ["KEEP"]
    # The DJ loops the loudest bar of a chorus: make its third bar (beat 56) the loudest.
    ctx = _context(labels, [-25, -18, -18, -14, -24, -14, -22])
    bar_db = ctx.bar_db.copy()
    bar_db[48 // 4 + 2] += 3.0
    looped = EditContext(sections=ctx.sections, bar_db=bar_db)
    assert decisions_at("dj", looped, 56)[0] == "LOOP"
    assert "LOOP" not in decisions_at("dj", looped, 48)


@pytest.mark.parametrize("style", list(STYLES))
def test_random_forms_give_valid_complete_edits(style: str) -> None:
    # 40 random forms and levels per style: decisions_from_actions replays every action
    # through the masks (raising on an invalid one), and the edit must decide every beat.
    rng = np.random.default_rng(7)
    for _ in range(40):
        labels = ["intro", *rng.choice(["verse", "chorus", "bridge"], rng.integers(1, 8)), "outro"]
        ctx = _context(list(labels), list(rng.uniform(-30, -10, len(labels))))
        actions = plan_edit(style, ctx, rng)
        dl = decisions_from_actions(actions, n_beats=ctx.n_beats, sample_rate=SR)
        state = initial_state(ctx.n_beats)
        for d in dl.decisions:
            state = step(state, d.type, d.size, d.amount)[0]
        assert state.done
