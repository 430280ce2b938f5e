"""Raw speed of the editing environment against a trivial reference env, in the same process.

How to run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_env.py [--steps N] [--append]``

What to expect: the reference env (a counter that returns a preallocated observation of the same
shapes) runs at several hundred thousand steps/s; the editing env must stay at ≥ 20,000 steps/s
on one core (issue 5), i.e. its ratio to the reference is what to watch across machines.
``--append`` adds a section to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from env_tables import make_table

from editorbot.envs.editing_env import EditingEnv


class TrivialEnv(gym.Env):
    """Same spaces, no work: returns copies of a fixed observation; 128-step episodes."""

    def __init__(self, like: EditingEnv) -> None:
        self.observation_space, self.action_space = like.observation_space, like.action_space
        self._obs = {k: np.asarray(v) for k, v in like.observation_space.sample().items()}
        self._t = 0

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[dict, dict]:
        self._t = 0
        return {k: v.copy() for k, v in self._obs.items()}, {}

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        self._t += 1
        obs = {k: v.copy() for k, v in self._obs.items()}
        return obs, 0.0, self._t >= 128, False, {}


def _steps_per_sec(env: gym.Env, actions: np.ndarray) -> float:
    env.reset(seed=0)
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return len(actions) / (time.perf_counter() - start)


def _policy_actions(env: EditingEnv, n: int) -> np.ndarray:
    """A mix of 1-beat and bar actions of cheap and structural types (all valid everywhere but
    near the track end, where the env's repair turns them into the nearest valid action)."""
    rng = np.random.default_rng(0)
    choices = np.array([[0, 0, 2], [1, 0, 2], [0, 1, 2], [8, 0, 3], [2, 0, 2]], np.int64)
    return choices[rng.integers(len(choices), size=n)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--append", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    env = EditingEnv({"tables": [make_table(s, n_phrases=16) for s in range(4)], "seed": 0})
    actions = _policy_actions(env, args.steps)
    reference = _steps_per_sec(TrivialEnv(env), actions)
    editing = _steps_per_sec(env, actions)
    lines = [
        f"\n## bench_env — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}",
        "",
        f"{args.steps} steps, one core (OMP_NUM_THREADS=1), window {env.config.window}, "
        f"{env.n_token_features} token features, 256-beat tracks; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other processes share them: the "
        "ratio is the comparable number).",
        "",
        "| env | steps/s | ratio to reference |",
        "|---|---|---|",
        f"| TrivialEnv (reference, same spaces) | {reference:,.0f} | 1.00 |",
        f"| EditingEnv | {editing:,.0f} | {editing / reference:.3f} |",
        "",
        f"Goal ≥ 20,000 steps/s: {'met' if editing >= 20_000 else 'NOT met'}.",
    ]
    print("\n".join(lines))
    if args.append:
        with open(Path(__file__).parent / "RESULTS.md", "a") as f:
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
