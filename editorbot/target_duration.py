"""``edit --target-duration``: fit a learner's edit to a wanted length, and hit it to the sample.

The learner's scores are gathered once (the RL policy's greedy episode, recording its heads'
log-probabilities at every step; or the supervised label head's per-beat log-probabilities),
then :func:`editorbot.editing.duration_decode.constrained_actions` picks the most likely list
within the tolerance (one bar by default). When the unconstrained list already fits it is kept
as is. ``exact`` then time-stretches the rendered edit (phase vocoder, pitch kept) by at most
:data:`MAX_STRETCH` to the target's sample count; the search then aims inside that margin.

The policy's observation shows the same target ratio as an edit without a target, so the
greedy episode here is exactly the unconstrained edit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from editorbot.editing.decisions import decisions_from_actions, plan_segments
from editorbot.editing.duration_decode import (
    BeatLogProbs,
    constrained_actions,
    max_output_samples,
    supervised_log_probs,
)
from editorbot.editing.render import planned_length, segment_edges
from editorbot.errors import ParameterError

if TYPE_CHECKING:
    from editorbot.editing.decisions import DecisionList
    from editorbot.envs.editing_env import EditingEnv
    from editorbot.models.policy_net import EditPolicyNet

MAX_STRETCH = 0.03
"""[ratio] largest time stretch ``exact`` applies (|rate - 1|)."""
_AIM = 0.025
"""[ratio] with ``exact``, the search's tolerance as a share of the target (inside MAX_STRETCH)."""


@dataclass(frozen=True)
class TargetSpec:
    """A wanted output length."""

    target_sec: float
    """[s] the wanted duration."""
    tolerance_sec: float | None = None
    """[s] allowed distance from the target; None = one bar of the track's grid."""
    exact: bool = False
    """[flag] time-stretch the result (≤ MAX_STRETCH) to the target's exact sample count."""


@dataclass(frozen=True, eq=False)
class Grid:
    """The raw track's beat grid in samples, as the renderer cuts it."""

    edges: np.ndarray
    """[shape=(n_beats + 1,)] int64 beat segment boundaries at ``sr``."""
    sr: int
    """[Hz] the raw track's rate."""
    downbeat_phase: int
    """[beats] first downbeat."""

    @classmethod
    def of(cls, beat_times: np.ndarray, *, sr: int, n_samples: int, phase: int) -> Grid:
        beat_samples = np.round(np.asarray(beat_times, np.float64) * sr).astype(np.int64)
        return cls(segment_edges(beat_samples, n_samples), sr, int(phase))

    @property
    def n_beats(self) -> int:
        return len(self.edges) - 1

    def bar_samples(self) -> int:
        """[samples] one bar: four times the median beat."""
        return round(4 * float(np.median(np.diff(self.edges))))


def target_from_args(
    duration_sec: float | None, ratio: float | None, *, raw_sec: float
) -> float | None:
    """[s] the target of ``--target-duration S`` or ``--target-ratio R`` (R × the raw length).

    Raises:
        ParameterError: both given, or not a positive number.
    """
    if duration_sec is not None and ratio is not None:
        raise ParameterError("give --target-duration or --target-ratio, not both")
    value = duration_sec if ratio is None else ratio * raw_sec
    if value is not None and not (np.isfinite(value) and value > 0):
        raise ParameterError(f"target duration {value!r} s: need a positive number of seconds")
    return value


def fit_actions(
    unconstrained: np.ndarray,
    lp: BeatLogProbs,
    grid: Grid,
    spec: TargetSpec,
    *,
    name: str = "track",
    per_beat: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The learner's own (unconstrained) actions if they fit ``spec``, else the most likely ones
    that do: the RL policy's greedy episode, or the supervised head's most likely list
    (``per_beat``, which the search then scores the same way).

    Returns:
        The actions [shape=(k, 3)] and what to record in the decision list's meta.

    Raises:
        ParameterError: the target is outside the track's reachable range (one line, naming it).
    """
    target = round(spec.target_sec * grid.sr)
    tol = _tolerance(spec, grid, target)
    _check_reachable(spec.target_sec, grid, name)
    free = output_samples(unconstrained, grid)
    actions = unconstrained
    if abs(free - target) > tol:
        actions = constrained_actions(
            lp, edges=grid.edges, downbeat_phase=grid.downbeat_phase,
            target_samples=target, tolerance_samples=tol, per_beat=per_beat,
        )  # fmt: skip
    planned = output_samples(actions, grid)
    assert abs(planned - target) <= tol, (planned, target, tol)
    return actions, {
        "target_duration_sec": spec.target_sec,
        "tolerance_sec": tol / grid.sr,
        "exact": spec.exact,
        "unconstrained_duration_sec": free / grid.sr,
        "constrained": actions is not unconstrained,
        "planned_duration_sec": planned / grid.sr,
    }


def fit_policy(
    net: EditPolicyNet, env: EditingEnv, grid: Grid, spec: TargetSpec, *, name: str = "track"
) -> tuple[np.ndarray, dict[str, Any]]:
    """The RL policy's edit of the env's track 0 fitted to ``spec`` (see :func:`fit_actions`)."""
    greedy, lp = policy_log_probs(net, env, 0)
    return fit_actions(greedy, lp, grid, spec, name=name)


def fit_supervised(
    checkpoint: str | Path, audio_path: str | Path, spec: TargetSpec | None, *, n_samples: int
) -> DecisionList:
    """The supervised label head's decision list for a track, fitted to ``spec`` if given."""
    from editorbot.editing.decisions import DecisionList
    from editorbot.inference.supervised import (
        decisions_with_confidence,
        decode_decisions,
        predict_beat_log_probs,
    )

    lp, beat_times, phase, sr, meta = predict_beat_log_probs(checkpoint, audio_path)
    decisions = decode_decisions(lp, n_beats=len(beat_times), downbeat_phase=phase)
    dl = DecisionList(sr, beat_times, tuple(decisions), downbeat_phase=phase,
                      meta={"source": "supervised", "checkpoint": str(checkpoint)})  # fmt: skip
    if spec is None:
        return dl
    grid = Grid.of(beat_times, sr=sr, n_samples=n_samples, phase=phase)
    free = dl.to_action_array()
    actions, fit = fit_actions(
        free, supervised_log_probs(lp), grid, spec, name=str(audio_path), per_beat=True
    )
    if not fit["constrained"]:
        return replace(dl, meta={**dl.meta, **fit})
    fitted = decisions_with_confidence(actions, lp, n_beats=grid.n_beats, downbeat_phase=phase)
    return replace(dl, decisions=tuple(fitted), meta={**dl.meta, **fit})


def finish_render(y: np.ndarray, sr: int, fit: dict[str, Any]) -> np.ndarray:
    """The rendered edit, stretched to the exact target when ``fit["exact"]``; records the
    achieved length in ``fit`` (the decision list's meta)."""
    if fit.get("exact"):
        y = stretch_to(y, round(fit["target_duration_sec"] * sr))
    if fit:
        fit["achieved_duration_sec"] = y.shape[1] / sr
    return y


def output_samples(actions: np.ndarray, grid: Grid) -> int:
    """[samples] the rendered length of ``actions`` on ``grid`` (the renderer's arithmetic)."""
    dl = decisions_from_actions(
        actions, n_beats=grid.n_beats, sample_rate=grid.sr, downbeat_phase=grid.downbeat_phase
    )
    return planned_length(grid.edges, plan_segments(dl, grid.n_beats))


def reachable_range_sec(grid: Grid) -> tuple[float, float]:
    """[s] the shortest target accepted (one bar) and the longest output: what the edit
    language makes on this grid (every LOOP and JUMP_BACK at its longest), capped at the
    renderer's default output bound."""
    from editorbot.editing.render import RenderConfig

    n_raw = int(grid.edges[-1])
    bound = RenderConfig().max_output_samples(sr=grid.sr, n_raw=n_raw)
    longest = min(max_output_samples(grid.edges, grid.downbeat_phase), bound)
    return grid.bar_samples() / grid.sr, longest / grid.sr


def stretch_to(y: np.ndarray, n_samples: int) -> np.ndarray:
    """[shape=(C, n_samples)] ``y`` time-stretched (pitch kept) to exactly ``n_samples``.

    Raises:
        ParameterError: the stretch would exceed :data:`MAX_STRETCH`.
    """
    from editorbot.editing import dsp

    C, n_in = y.shape
    rate = n_in / n_samples
    if abs(rate - 1.0) > MAX_STRETCH + 1e-9:
        raise ParameterError(f"stretch {rate:.4f} exceeds ±{MAX_STRETCH:.0%}")
    if n_in == n_samples:
        return y
    out = dsp.time_stretch(y, rate=rate)
    return dsp.slice_padded(out, 0, n_samples)  # the vocoder rounds; one sample either way


def policy_log_probs(
    net: EditPolicyNet, env: EditingEnv, track_index: int
) -> tuple[np.ndarray, BeatLogProbs]:
    """The greedy episode of ``net`` (in eval mode: the same actions as
    ``inference.rl.run_policy``) and its heads' log-probabilities at every raw beat.

    A beat the episode's cursor visited gets the log-probabilities of that step (the first one
    there, before any JUMP_BACK); a beat inside a longer action gets those of the step that
    covered it: the policy was not asked there, and its view a beat later is much the same.
    """
    import torch

    from editorbot.envs import spaces as sp
    from editorbot.models.policy_net import greedy_actions

    keys = sp.POLICY_KEYS
    device = next(net.parameters()).device
    obs, _ = env.reset(seed=0, options={"track_index": track_index})
    actions, cursors, rows = [], [], []
    done = False
    with torch.inference_mode():
        while not done:
            cursors.append(env.cursor)
            logits = net({k: torch.from_numpy(obs[k][None]).to(device) for k in keys}, reuse=True)
            rows.append([torch.log_softmax(x[0], dim=-1).double().cpu().numpy() for x in logits])
            action = greedy_actions(logits)[0].cpu().numpy()
            obs, _, terminated, truncated, _ = env.step(action)
            actions.append(action)
            done = terminated or truncated
    n = env.tables[track_index].n_beats
    at = np.searchsorted(np.asarray(cursors), np.arange(n), side="right") - 1
    first = np.searchsorted(np.asarray(cursors), np.arange(n), side="left")
    visited = first < len(cursors)
    visited[visited] = np.asarray(cursors)[first[visited]] == np.arange(n)[visited]
    at = np.where(visited, first, at)
    tables = [np.stack([r[i] for r in rows])[at] for i in range(3)]
    return np.asarray(actions, np.int64).reshape(-1, 3), BeatLogProbs(*tables)


def _tolerance(spec: TargetSpec, grid: Grid, target: int) -> int:
    tol = grid.bar_samples() if spec.tolerance_sec is None else round(spec.tolerance_sec * grid.sr)
    if spec.tolerance_sec is not None and tol < 1:
        raise ParameterError(f"tolerance {spec.tolerance_sec!r} s: need a positive duration")
    return min(tol, int(_AIM * target)) if spec.exact else tol


def _check_reachable(target_sec: float, grid: Grid, name: str) -> None:
    lo, hi = reachable_range_sec(grid)
    if not lo <= target_sec <= hi:
        raise ParameterError(
            f"{name}: target {target_sec:.2f} s is out of reach; this track's edits can last "
            f"{lo:.2f}-{hi:.2f} s (one bar up to the edit language's longest, within the "
            "renderer's output bound)"
        )
