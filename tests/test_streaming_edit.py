"""Long tracks in bounded memory: block-wise checks and analysis, streamed render, same samples.

A generated radio-style song (stereo, 44.1 kHz, 16-bit WAV written and read back) is analysed
from the file a block at a time and from memory, and rendered into a file a block at a time
and into memory, with decision lists of every type; each pair must agree sample for sample
(the block-wise code computes the same arithmetic on the same values, so no tolerance).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from editorbot.audio.io import (
    Audio,
    AudioFile,
    analysis_signal,
    load_audio,
    open_audio,
    resample,
    to_mono,
)
from editorbot.editing import output_tape
from editorbot.editing.actions import (
    ActionAmount,
    ActionSize,
    ActionType,
    action_masks,
    initial_state,
    step,
)
from editorbot.editing.decisions import decisions_from_actions
from editorbot.editing.render import render_decision_list, render_to_file
from editorbot.errors import AudioLoadError

SR = 44100


@pytest.fixture(scope="module")
def song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24 s radio-style demo song, stereo 44.1 kHz PCM_16."""
    from editorbot.datasets.demo import DemoConfig, make_pair
    from editorbot.datasets.song import SongConfig

    path = tmp_path_factory.mktemp("stream") / "song.wav"
    pair = make_pair(
        3,
        0,
        style="radio",
        config=DemoConfig(song=SongConfig(min_seconds=24, max_seconds=24, sr=SR)),
    )
    sf.write(str(path), pair.raw.y.T, SR, subtype="PCM_16")
    return path


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "AIFF"])
def test_a_seekable_file_stays_on_disk_and_reads_what_load_audio_holds(
    song: Path, tmp_path: Path, fmt: str
) -> None:
    """Ranges read by seek (FLAC: from a seek point, decoded to the sample) equal the same
    slices of the whole decode, zeros past either end."""
    path = song
    if fmt != "WAV":
        path = tmp_path / f"song.{fmt.lower()}"
        y, _ = sf.read(str(song), dtype="int16")
        sf.write(str(path), y, SR, format=fmt, subtype="PCM_16")
    audio, track = load_audio(path), open_audio(path)
    assert isinstance(track, AudioFile)
    assert (track.sr, track.n_channels, track.n_samples) == (audio.sr, 2, audio.n_samples)
    L = audio.n_samples
    ranges = [(0, 1000), (12345, 67890), (L // 2 + 7, L // 2 + 9000), (-300, 200),
              (L - 50, L + 70), (L + 5, L + 9), (30000, 20000 + 2**18)]  # fmt: skip
    for start, end in ranges:
        np.testing.assert_array_equal(track.read(start, end), audio.read(start, end))


@pytest.mark.parametrize("sr", [44100, 48000, 22050, 96000, 8000])
def test_block_wise_analysis_signal_is_the_whole_track_resampling(song: Path, sr: int) -> None:
    """Each block is read with the kernel's context, so every output sample is computed from
    the same inputs as the whole-track call, and (blocks of >= 2^17 samples take the same
    convolution path) bit for bit the same. The song is shortened to 6 blocks at 44.1 kHz."""
    y = load_audio(song).y[:, : 6 * 2**18 + 123]
    audio = Audio(y=y, sr=sr)  # the same samples declared at other rates
    whole = resample(to_mono(y), orig_sr=sr, target_sr=22050)
    np.testing.assert_array_equal(analysis_signal(audio), whole)


def test_analysis_from_the_file_equals_analysis_in_memory(song: Path) -> None:
    from editorbot.audio.analysis import analyze

    in_memory, from_file = analyze(load_audio(song)), analyze(open_audio(song))
    np.testing.assert_array_equal(from_file.grid.beat_times, in_memory.grid.beat_times)
    assert from_file.grid.downbeat_phase == in_memory.grid.downbeat_phase
    np.testing.assert_array_equal(from_file.features, in_memory.features)


def _random_edit(n_beats: int, seed: int, phase: int) -> np.ndarray:
    """A valid action sequence, types drawn uniformly among the valid ones, mostly beat and bar
    sizes (many seams); REPEAT_PREV a quarter of the times it is valid."""
    rng = np.random.default_rng(seed)
    state, actions = initial_state(n_beats, downbeat_phase=phase), []
    while not state.done:
        tm, sm, am = action_masks(state)
        t = int(rng.choice(np.flatnonzero(tm)))
        if tm[ActionType.REPEAT_PREV] and rng.random() < 0.25:
            t = ActionType.REPEAT_PREV
        sizes = np.flatnonzero(sm[t])
        s = int(rng.choice(sizes[:2] if rng.random() < 0.8 else sizes))  # mostly BEAT, BAR
        a = int(rng.choice(np.flatnonzero(am[t])))
        actions.append((t, s, a))
        state, _ = step(state, t, s, a)
    return np.array(actions)


def test_streamed_render_is_the_in_memory_render(
    song: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random edits of every type (cuts, loops, fades, reverb, pitch and speed with their
    tails, REPEAT_PREV reading the output back) written block by block equal the in-memory
    render bit for bit (FLOAT WAV). The tape hands on every 64 samples here, not 2^16, so
    seams and REPEAT_PREV run right at the edge of what it still holds."""
    from editorbot.audio.analysis import analyze

    monkeypatch.setattr(output_tape, "_MIN_FLUSH", 64)
    track = open_audio(song)
    grid = analyze(track).grid
    seen: set[int] = set()
    for seed in range(5):
        actions = _random_edit(grid.n_beats, seed, grid.downbeat_phase)
        seen |= set(actions[:, 0].tolist())
        dl = decisions_from_actions(actions, n_beats=grid.n_beats, sample_rate=SR,
                                    beat_times=grid.beat_times,
                                    downbeat_phase=grid.downbeat_phase)  # fmt: skip
        expected = render_decision_list(load_audio(song), dl)
        out = tmp_path / f"edit_{seed}.wav"
        done = render_to_file(track, dl, out)
        y, sr = sf.read(str(out), dtype="float32", always_2d=True)
        assert sr == SR and done.n_samples == expected.y.shape[1]
        np.testing.assert_array_equal(y.T, expected.y)
        np.testing.assert_array_equal(done.out_beat_samples, expected.out_beat_samples)
        assert done.segments == expected.segments
    tails = {ActionType.REVERB, ActionType.PITCH_UP, ActionType.SPEED_DOWN, ActionType.SPEED_UP}
    structural = {ActionType.CUT, ActionType.LOOP, ActionType.REPEAT_PREV, ActionType.FADE_OUT}
    assert tails | structural <= seen, sorted(ActionType(t).name for t in seen)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_a_flac_render_streams_the_same_samples(song: Path, tmp_path: Path) -> None:
    """FLAC stores PCM_24: both renders quantise the same float samples the same way."""
    from editorbot.audio.analysis import analyze

    track = open_audio(song)
    grid = analyze(track).grid
    actions = _random_edit(grid.n_beats, 7, grid.downbeat_phase)
    dl = decisions_from_actions(
        actions, n_beats=grid.n_beats, sample_rate=SR, beat_times=grid.beat_times,
        downbeat_phase=grid.downbeat_phase,
    )  # fmt: skip
    from editorbot.audio.io import write_audio

    write_audio(tmp_path / "memory.flac", render_decision_list(track, dl).y, sr=SR)
    render_to_file(track, dl, tmp_path / "streamed.flac")
    a, _ = sf.read(str(tmp_path / "memory.flac"), dtype="int32")
    b, _ = sf.read(str(tmp_path / "streamed.flac"), dtype="int32")
    np.testing.assert_array_equal(a, b)


def test_an_output_past_the_limit_leaves_no_file(song: Path, tmp_path: Path) -> None:
    from editorbot.audio.analysis import analyze
    from editorbot.editing.render import RenderConfig
    from editorbot.errors import ParameterError

    track = open_audio(song)
    grid = analyze(track).grid
    keep = [ActionType.KEEP, ActionSize.BEAT, ActionAmount.NEUTRAL]
    dl = decisions_from_actions(
        np.tile(keep, (grid.n_beats, 1)), n_beats=grid.n_beats, sample_rate=SR,
        beat_times=grid.beat_times,
    )  # fmt: skip
    # KEEP BEAT NEUTRAL everywhere: the whole track, 24 s, past a 1 s limit
    with pytest.raises(ParameterError, match="past the limit"):
        render_to_file(track, dl, tmp_path / "o.wav", config=RenderConfig(max_output_sec=1.0))
    assert list(tmp_path.iterdir()) == []


def _wav(path: Path, y: np.ndarray, subtype: str = "FLOAT") -> Path:
    sf.write(str(path), y.T, SR, subtype=subtype)
    return path


def test_block_wise_checks_refuse_what_load_audio_refuses(tmp_path: Path) -> None:
    """Same messages from the block scan as from the whole-track checks, for a NaN far past
    the first block, a silent file and a short one."""
    t = np.arange(3 * 2**18) / SR
    y = np.stack([0.5 * np.sin(2 * np.pi * 220 * t)] * 2).astype(np.float32)
    bad = y.copy()
    bad[1, -10] = np.nan
    cases = {
        "1 NaN/inf samples": _wav(tmp_path / "nan.wav", bad),
        "all silent": _wav(tmp_path / "silent.wav", np.zeros_like(y)),
        "need at least": _wav(tmp_path / "short.wav", y[:, : SR // 2]),
    }
    for message, path in cases.items():
        with pytest.raises(AudioLoadError, match=message) as whole:
            load_audio(path)
        with pytest.raises(AudioLoadError, match=message) as blocks:
            open_audio(path)
        assert str(blocks.value) == str(whole.value)


def test_a_compressed_track_is_decoded_whole(tmp_path: Path) -> None:
    """OGG/Vorbis seeks to a page, not a sample: it is held in memory as before."""
    t = np.arange(5 * SR) / SR
    y = np.stack([0.3 * np.sin(2 * np.pi * 330 * t)] * 2).astype(np.float32)
    path = tmp_path / "a.ogg"
    sf.write(str(path), y.T, SR, format="OGG", subtype="VORBIS")
    audio = open_audio(path)
    assert isinstance(audio, Audio)
    np.testing.assert_array_equal(audio.y, load_audio(path).y)


def _sparse_wav(path: Path, seconds: float, *, sr: int, channels: int) -> Path:
    """A 16-bit PCM WAV header for ``seconds`` of audio; the samples are a hole (no disk)."""
    import struct

    data = int(seconds * sr) * channels * 2
    fmt = struct.pack("<IHHIIHH", 16, 1, channels, sr, sr * channels * 2, channels * 2, 16)
    header = b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + fmt
    with open(path, "wb") as f:
        f.write(header + b"data" + struct.pack("<I", data))
        f.truncate(len(header) + 8 + data)
    return path


def test_a_wav_is_bounded_by_its_duration_not_its_decoded_size(tmp_path: Path) -> None:
    """20 min of 8 channels at 96 kHz is 3.4 GiB decoded: accepted, since it is read by seek;
    2 hours is refused, naming the minutes (and no GiB: that bound is for formats decoded
    whole)."""
    from editorbot.audio.io import check_input_size

    wide = _sparse_wav(tmp_path / "wide.wav", 1200, sr=96000, channels=8)
    assert check_input_size(wide) == pytest.approx(1200.0)
    long = _sparse_wav(tmp_path / "long.wav", 7200, sr=44100, channels=2)
    with pytest.raises(AudioLoadError, match=r"long\.wav: 120\.0 min.*at most 30 min \(") as e:
        check_input_size(long)
    assert "GiB decoded (" not in str(e.value)
