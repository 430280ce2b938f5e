"""Target duration as a constraint (``edit --target-duration``): fits, exactness, free constraint.

The properties do not depend on the policy's quality, so the checkpoint is an untrained tiny
network (as in test_edit) and the songs are freshly generated demo songs none of it saw.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from editorbot.cli import main as cli
from editorbot.editing.decisions import decisions_from_actions
from editorbot.editing.duration_decode import (
    BeatLogProbs,
    constrained_actions,
    supervised_log_probs,
)
from editorbot.editing.render import render
from editorbot.target_duration import (
    Grid,
    TargetSpec,
    fit_actions,
    output_samples,
    stretch_to,
)

RATIOS = (0.4, 0.6, 0.8, 1.0, 1.25, 1.5)
"""Targets as a share of the raw length: the issue's 40 % to 150 %."""


def _random_log_probs(n: int, seed: int) -> BeatLogProbs:
    rng = np.random.default_rng(seed)

    def ls(x: np.ndarray) -> np.ndarray:
        return x - np.log(np.exp(x).sum(-1, keepdims=True))

    return BeatLogProbs(
        ls(rng.normal(0, 2, (n, 20))), ls(rng.normal(0, 2, (n, 20, 5))),
        ls(rng.normal(0, 2, (n, 20, 5, 5))),
    )  # fmt: skip


def _jittered_grid(n: int, sr: int, seed: int) -> tuple[np.ndarray, int]:
    rng = np.random.default_rng(seed)
    beat = 0.5 * sr  # [samples] 120 BPM
    bs = np.round(np.arange(n) * beat + rng.normal(0, 0.01 * beat, n)).astype(np.int64)
    bs[0] = 0
    return bs, int(n * beat)


def test_planned_length_is_the_rendered_length() -> None:
    """The search measures lengths with the renderer's arithmetic: a render of its answer is
    exactly as long as planned (effects, speed changes and jumps included)."""
    sr, n = 8000, 48
    bs, L = _jittered_grid(n, sr, 0)
    y = np.random.default_rng(1).normal(0, 0.1, (1, L)).astype(np.float32)
    grid = Grid.of(bs / sr, sr=sr, n_samples=L, phase=1)
    for i, ratio in enumerate((0.45, 1.3)):
        target = round(ratio * L)
        actions = constrained_actions(_random_log_probs(n, i), edges=grid.edges, downbeat_phase=1,
                                      target_samples=target, tolerance_samples=sr)  # fmt: skip
        dl = decisions_from_actions(actions, n_beats=n, sample_rate=sr, downbeat_phase=1)
        out = render(y, sr=sr, beat_samples=bs, decisions=dl)
        assert out.y.shape[1] == output_samples(actions, grid)
        assert abs(out.y.shape[1] - target) <= sr  # within the tolerance asked (1 s)


def test_every_target_from_40_to_150_percent_fits_within_one_bar() -> None:
    """A 3-minute grid (360 beats), random scores: each target's plan is within one bar."""
    sr, n = 22050, 360
    bs, L = _jittered_grid(n, sr, 2)
    grid = Grid.of(bs / sr, sr=sr, n_samples=L, phase=0)
    lp = _random_log_probs(n, 3)
    greedy = np.array([[0, 0, 2]] * n)  # keep every beat
    for ratio in RATIOS:
        spec = TargetSpec(ratio * L / sr)
        actions, meta = fit_actions(greedy, lp, grid, spec)
        assert (
            abs(output_samples(actions, grid) - round(spec.target_sec * sr)) <= grid.bar_samples()
        )
        assert meta["planned_duration_sec"] == pytest.approx(output_samples(actions, grid) / sr)


def test_a_free_constraint_returns_the_unconstrained_list() -> None:
    """Target = the unconstrained list's own length: that list, unchanged, not a re-decode."""
    sr, n = 22050, 64
    bs, L = _jittered_grid(n, sr, 4)
    grid = Grid.of(bs / sr, sr=sr, n_samples=L, phase=0)
    greedy = np.array([[1, 1, 2]] + [[0, 1, 2]] * 15)  # CUT a bar, then keep bars
    length = output_samples(greedy, grid)
    actions, meta = fit_actions(greedy, _random_log_probs(n, 5), grid, TargetSpec(length / sr))
    assert actions is greedy and not meta["constrained"]


def test_supervised_scores_fit_too() -> None:
    """The label head's per-beat (type, size, amount) log-probabilities drive the same search."""
    sr, n = 22050, 96
    bs, L = _jittered_grid(n, sr, 6)
    grid = Grid.of(bs / sr, sr=sr, n_samples=L, phase=0)
    rng = np.random.default_rng(7)
    lp = [rng.normal(size=(n, k)) for k in (20, 5, 5)]
    lp = [x - np.log(np.exp(x).sum(-1, keepdims=True)) for x in lp]
    greedy = np.array([[0, 0, 2]] * n)
    actions, _ = fit_actions(greedy, supervised_log_probs(lp), grid, TargetSpec(0.5 * L / sr))
    assert abs(output_samples(actions, grid) - round(0.5 * L)) <= grid.bar_samples()


def test_stretch_hits_the_sample_count_and_refuses_more_than_3_percent() -> None:
    from editorbot.errors import ParameterError

    y = np.random.default_rng(0).normal(0, 0.1, (2, 22050)).astype(np.float32)
    assert stretch_to(y, 21600).shape == (2, 21600)  # 2.1 % shorter
    with pytest.raises(ParameterError, match="exceeds"):
        stretch_to(y, 20000)  # 10 % shorter


# -- the real edit path on generated demo songs --------------------------------------------------


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from editorbot.datasets.demo import DemoConfig, generate
    from editorbot.datasets.song import SongConfig

    out = tmp_path_factory.mktemp("held_out")
    generate(out, n_tracks=3, seed=21, config=DemoConfig(song=SongConfig(min_seconds=20,
             max_seconds=25, sr=22050)))  # fmt: skip
    return sorted((out / "input").glob("*_raw.wav"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from env_tables import write_untrained_checkpoint

    return write_untrained_checkpoint(tmp_path_factory.mktemp("ckpt") / "best")


def _policy_on(song: Path, checkpoint: Path) -> tuple:
    """What ``edit_track`` builds before decoding: the policy, its env on the song, the grid."""
    from editorbot.inference.rl import policy_on_track

    net, env, audio, g = policy_on_track(checkpoint, song)
    grid = Grid.of(g.beat_times, sr=audio.sr, n_samples=audio.n_samples, phase=g.downbeat_phase)
    return net, env, grid, audio, g.beat_times


@pytest.mark.slow
def test_every_held_out_song_fits_every_target(songs: list[Path], checkpoint: Path) -> None:
    """40-150 % of each song: rendered within one bar; with exact, within 1 ms of the target."""
    from editorbot.editing.render import render_decision_list
    from editorbot.target_duration import finish_render, fit_policy

    for song in songs:
        net, env, grid, audio, beat_times = _policy_on(song, checkpoint)
        for ratio in RATIOS:
            for exact in (False, True):
                spec = TargetSpec(ratio * audio.n_samples / audio.sr, exact=exact)
                actions, fit = fit_policy(net, env, grid, spec)
                dl = decisions_from_actions(actions, n_beats=grid.n_beats, sample_rate=audio.sr,
                                            beat_times=beat_times,
                                            downbeat_phase=grid.downbeat_phase)  # fmt: skip
                y = finish_render(render_decision_list(audio, dl).y, audio.sr, fit)
                error = abs(y.shape[1] / audio.sr - spec.target_sec)
                limit = 1e-3 if exact else grid.bar_samples() / audio.sr
                assert error <= limit, (song.name, ratio, exact, error)
                assert fit["achieved_duration_sec"] == y.shape[1] / audio.sr


def test_cli_free_target_gives_the_unconstrained_edit(
    songs: list[Path], checkpoint: Path, tmp_path: Path
) -> None:
    args = ["edit", str(songs[0]), "--checkpoint", str(checkpoint)]
    assert cli([*args, "--output", str(tmp_path / "free.wav")]) == 0
    free_sec = sf.info(str(tmp_path / "free.wav")).duration
    out = tmp_path / "fit.wav"
    assert cli([*args, "--output", str(out), "--target-duration", str(free_sec)]) == 0
    free = json.loads((tmp_path / "free.decisions.json").read_text())
    fit = json.loads(out.with_suffix(".decisions.json").read_text())
    assert fit["decisions"] == free["decisions"]
    assert fit["meta"]["target_duration_sec"] == free_sec and not fit["meta"]["constrained"]
    assert fit["meta"]["achieved_duration_sec"] == pytest.approx(free_sec, abs=1e-9)


def test_cli_exact_hits_the_target(songs: list[Path], checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "exact.wav"
    args = ["edit", str(songs[1]), "--checkpoint", str(checkpoint), "--output", str(out)]
    assert cli([*args, "--target-ratio", "0.7", "--exact"]) == 0
    raw_sec = sf.info(str(songs[1])).duration
    assert abs(sf.info(str(out)).duration - 0.7 * raw_sec) <= 1e-3  # the 1 ms


@pytest.mark.parametrize("target", ["0.5", "100000"])
def test_cli_impossible_target_names_the_reachable_range(
    songs: list[Path], checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture, target: str
) -> None:
    out = tmp_path / "x.wav"
    args = ["edit", str(songs[0]), "--checkpoint", str(checkpoint), "--output", str(out)]
    assert cli([*args, "--target-duration", target]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "out of reach" in err[0] and "can last" in err[0]
    assert not out.exists()


@pytest.mark.slow
def test_evaluate_reports_type_accuracy_at_imposed_lengths(
    songs: list[Path], checkpoint: Path, tmp_path: Path
) -> None:
    """evaluate's target sweep: 0.8x/1.0x/1.2x the human edit's length, each scored and each
    planned within one bar (a relative error below one bar over the shortest edit's length)."""
    from editorbot.evaluation.report import evaluate
    from editorbot.evaluation.target_sweep import FACTORS

    result = evaluate(songs[0].parent.parent, [checkpoint], out_dir=tmp_path)
    (name,) = result["checkpoints"]
    sweep = result["target_sweep"][name]
    assert list(sweep) == [f"{f:g}x" for f in FACTORS]
    for row in sweep.values():
        assert row["n_tracks"] + row["n_unreachable"] == len(songs)
        assert 0.0 <= row["type_accuracy"] <= 1.0
        assert row["duration_error"] < 0.25  # a bar (~2 s) over edits of >= 10 s
    assert "## Target duration" in (tmp_path / "report.md").read_text()


def test_cli_supervised_target_fits_and_free_target_keeps_the_list(
    songs: list[Path], tmp_path: Path
) -> None:
    """The label head's edit (an untrained tiny model, saved by the real save path) obeys the
    same constraint: within one bar, and unchanged when its own length is asked for."""
    import torch

    from editorbot.models.supervised import SupervisedConfig, SupervisedEditModel, save_checkpoint

    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "sup", SupervisedEditModel(SupervisedConfig.tiny()))
    args = ["edit", str(songs[2]), "--checkpoint", str(ckpt)]
    assert cli([*args, "--output", str(tmp_path / "free.wav")]) == 0
    free_sec = sf.info(str(tmp_path / "free.wav")).duration
    free = json.loads((tmp_path / "free.decisions.json").read_text())
    assert cli([*args, "--output", str(tmp_path / "same.wav"), "--target-duration",
                str(free_sec)]) == 0  # fmt: skip
    same = json.loads((tmp_path / "same.decisions.json").read_text())
    assert same["decisions"] == free["decisions"] and not same["meta"]["constrained"]
    raw_sec = sf.info(str(songs[2])).duration
    assert cli([*args, "--output", str(tmp_path / "half.wav"), "--target-ratio", "0.5"]) == 0
    half = json.loads((tmp_path / "half.decisions.json").read_text())["meta"]
    bar_sec = 4 * float(np.median(np.diff(free["beat_times"])))
    assert abs(sf.info(str(tmp_path / "half.wav")).duration - 0.5 * raw_sec) <= bar_sec
    assert half["achieved_duration_sec"] == pytest.approx(
        sf.info(str(tmp_path / "half.wav")).duration
    )


def _label_head_log_probs(n: int, seed: int) -> list[np.ndarray]:
    """A label head's per-beat log-probabilities: type (n, 20), size (n, 5), amount (n, 5)."""
    rng = np.random.default_rng(seed)
    lp = [rng.normal(0, 2, size=(n, k)) for k in (20, 5, 5)]
    return [x - np.log(np.exp(x).sum(-1, keepdims=True)) for x in lp]


def _labelled_score(actions: np.ndarray, lp: list[np.ndarray], n: int, phase: int) -> float:
    """What the label head says of a whole decision list, by the training convention: every
    raw beat scores the label ``supervised_data.beat_labels`` gives it; a JUMP_BACK (which
    labels no beat) scores its own labels at its cursor."""
    from editorbot.editing.actions import ActionType
    from editorbot.training.supervised_data import beat_labels

    dl = decisions_from_actions(actions, n_beats=n, sample_rate=100, downbeat_phase=phase,
                                beat_times=np.arange(n, dtype=np.float64))  # fmt: skip
    labels = beat_labels(dl, n)
    beats = np.arange(n)
    total = float(sum(lp[k][beats, labels[k]].sum() for k in range(3)))
    for d in dl.decisions:
        if d.type == ActionType.JUMP_BACK:
            total += sum(float(lp[k][d.beat, v]) for k, v in enumerate((d.type, d.size, d.amount)))
    return total


def _exhaustive_best(lp: list[np.ndarray], n: int, phase: int) -> float:
    """The best summed per-beat score over every valid action sequence, by a memoised search
    over the edit state machine itself (``actions.is_valid`` / ``step``): the reference."""
    from functools import cache

    from editorbot.editing.actions import EditState, is_valid, step

    @cache
    def best(cursor: int, n_out: int, jumped: bool) -> float:
        if cursor >= n:
            return 0.0
        state = EditState(n_beats=n, downbeat_phase=phase, cursor=cursor, n_output_beats=n_out,
                          last_was_jump=jumped)  # fmt: skip
        out = -np.inf
        for t in range(20):
            for s in range(5):
                for a in range(5):
                    if not is_valid(state, t, s, a):
                        continue
                    nxt, _ = step(state, t, s, a)
                    beats = np.arange(cursor, nxt.cursor) if nxt.cursor > cursor else [cursor]
                    here = float(sum(lp[k][beats, v].sum() for k, v in enumerate((t, s, a))))
                    # output beats beyond the track length cannot change any validity
                    rest = best(nxt.cursor, min(nxt.n_output_beats, n), nxt.last_was_jump)
                    out = max(out, here + rest)
        return out

    return best(0, 0, False)


def test_label_head_decode_is_the_most_likely_labelling() -> None:
    """The supervised decode maximises the label head's per-beat likelihood of the decision
    list under the training convention: equal (to float rounding) to an exhaustive search over
    the state machine, and the list's labels (``beat_labels``) score exactly that."""
    from editorbot.editing.actions import initial_state, step
    from editorbot.editing.duration_decode import most_likely_actions

    n = 9
    for seed, phase in ((0, 0), (1, 3), (2, 1)):
        lp = _label_head_log_probs(n, seed)
        actions = most_likely_actions(supervised_log_probs(lp), n_beats=n, downbeat_phase=phase)
        state = initial_state(n, downbeat_phase=phase)
        for t, s, a in actions.tolist():
            state, _ = step(state, t, s, a)  # raises on an invalid action
        assert state.done
        found = _labelled_score(actions, lp, n, phase)
        assert found == pytest.approx(_exhaustive_best(lp, n, phase), abs=1e-9)


def test_a_size_read_at_one_beat_does_not_swallow_the_beats_after_it() -> None:
    """Beat 0's size head says 'two bars' but the type head reads beats 4-7 as KEEP: the
    decode fades one bar in and keeps the next (the cursor-only, greedy reading faded both)."""
    from editorbot.editing.actions import ActionSize, ActionType
    from editorbot.inference.supervised import decode_decisions

    n, low = 8, np.log(1e-4)
    type_lp = np.full((n, 20), low)
    type_lp[:4, ActionType.FADE_IN] = type_lp[4:, ActionType.KEEP] = np.log(0.99)
    type_lp[0, ActionType.FADE_IN] = np.log(0.99)
    size_lp = np.full((n, 5), low)
    size_lp[:, ActionSize.BAR] = np.log(0.6)
    size_lp[:, ActionSize.TWO_BARS] = np.log(0.4)
    size_lp[0, ActionSize.TWO_BARS], size_lp[0, ActionSize.BAR] = np.log(0.9), np.log(0.1)
    amount_lp = np.full((n, 5), np.log(0.2))
    got = decode_decisions([type_lp, size_lp, amount_lp], n_beats=n, downbeat_phase=0)
    assert [(d.beat, d.type, d.size) for d in got] == [
        (0, ActionType.FADE_IN, ActionSize.BAR), (4, ActionType.KEEP, ActionSize.BAR)
    ]  # fmt: skip
    assert all(0.0 < d.confidence <= 1.0 for d in got)
