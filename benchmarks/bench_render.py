"""Benchmark: rendering a 3-minute stereo 44.1 kHz track with 200 decisions.

Three timings in one process, one thread (``torch.set_num_threads(1)``; run with
``OMP_NUM_THREADS=1``), on the same track and the same random valid structural decision list
(KEEP, CUT, LOOP, REORDER, JUMP_BACK, SKIP, REPEAT_PREV, SWAP_NEXT; BEAT and BAR sizes):

- ``render``: :func:`editorbot.editing.render.render` — state machine, crossfades, output map.
- ``naive_concat`` (the named baseline): the same planned segments cut out one by one in a
  Python loop and joined with ``np.concatenate``, no fades and no map — the least a renderer
  can do in plain numpy.
- ``copy_once``: copying the whole track once (``np.array(y)``), the floor of memory traffic.

A second row renders 20 effect decisions (GAIN, EQ, FADE, DISTORTION, REVERB, PITCH, SPEED,
REVERSE) on the same track, to show what the DSP costs beside the structural edits.

How to run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_render.py [--json] [--repeats 5]

What to expect: ``render`` well under 1 s (tens of ms) and within a small factor of
``naive_concat``; results are recorded in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from editorbot.editing.actions import (
    ActionSize,
    ActionType,
    action_masks,
    initial_state,
    step,
)
from editorbot.editing.decisions import DecisionList, decisions_from_actions, plan_segments
from editorbot.editing.render import render

SR = 44100
SECONDS = 180.0
TEMPO_BPM = 120.0
STRUCTURAL = (
    ActionType.KEEP, ActionType.CUT, ActionType.LOOP, ActionType.REORDER,
    ActionType.JUMP_BACK, ActionType.SKIP, ActionType.REPEAT_PREV, ActionType.SWAP_NEXT,
)  # fmt: skip
EFFECTS = (
    ActionType.GAIN, ActionType.EQ_LOW, ActionType.EQ_HIGH, ActionType.FADE_IN,
    ActionType.FADE_OUT, ActionType.DISTORTION, ActionType.REVERB, ActionType.PITCH_UP,
    ActionType.SPEED_UP, ActionType.REVERSE,
)  # fmt: skip


def track(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """[shape=(2, L)] float32 chords + noise at 44.1 kHz and int64 beat samples at 120 BPM."""
    rng = np.random.default_rng(seed)
    L = int(SECONDS * SR)
    t = np.arange(L) / SR
    y = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (110.0, 138.6, 164.8, 220.0))
    y = y + 0.02 * rng.standard_normal(L)
    beats = np.arange(0, L, round(SR * 60 / TEMPO_BPM), dtype=np.int64)
    return np.stack([y, np.roll(y, 100)]).astype(np.float32), beats


def random_decisions(n_beats: int, n: int, types: tuple, seed: int) -> DecisionList:
    """``n`` random valid actions of ``types`` via the state machine (70 % BEAT, else up to a bar,
    so 200 decisions fit in a 360-beat track)."""
    rng = np.random.default_rng(seed)
    state, actions = initial_state(n_beats), []
    while not state.done and len(actions) < n:
        tm, sm, am = action_masks(state)
        t = int(rng.choice([x for x in types if tm[x]]))
        sizes = np.flatnonzero(sm[t, : ActionSize.BAR + 1])
        s = int(sizes[0] if rng.random() < 0.7 else rng.choice(sizes))
        a = int(rng.choice(np.flatnonzero(am[t])))
        actions.append((t, s, a))
        state, _ = step(state, t, s, a)
    return decisions_from_actions(np.array(actions), n_beats=n_beats, sample_rate=SR)


def naive_concat(y: np.ndarray, beats: np.ndarray, dl: DecisionList) -> np.ndarray:
    """The baseline: cut each planned raw segment out and ``np.concatenate`` them (no fades)."""
    edges = np.concatenate([[0], beats[1:], [y.shape[1]]])
    pieces: list[np.ndarray] = []
    for _, seg in plan_segments(dl, len(beats)):
        if seg.from_output:  # REPEAT_PREV: approximate with the raw beats it consumed
            a, b = seg.consumed_start, seg.consumed_end
        else:
            a, b = seg.start_beat, seg.end_beat
        pieces += [y[:, edges[a] : edges[b]]] * seg.repeats
    return np.concatenate(pieces, axis=1)


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """[s] fastest of ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs each (best kept)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    y, beats = track()
    dl = random_decisions(len(beats), 200, STRUCTURAL, seed=0)
    fx = random_decisions(len(beats), 20, EFFECTS, seed=1)
    results = {
        "track": f"{SECONDS:.0f} s stereo {SR} Hz, {len(beats)} beats",
        "n_structural_decisions": len(dl.decisions),
        "n_effect_decisions": len(fx.decisions),
        "render_s": best_of(
            lambda: render(y, sr=SR, beat_samples=beats, decisions=dl), args.repeats
        ),
        "naive_concat_s": best_of(lambda: naive_concat(y, beats, dl), args.repeats),
        "copy_once_s": best_of(lambda: np.array(y), args.repeats),
        "render_effects_s": best_of(
            lambda: render(y, sr=SR, beat_samples=beats, decisions=fx), max(1, args.repeats // 2)
        ),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
    }
    results["ratio_render_vs_naive_concat"] = results["render_s"] / results["naive_concat_s"]
    results["ratio_render_vs_copy_once"] = results["render_s"] / results["copy_once_s"]
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        for k, v in results.items():
            print(f"{k:32s} {v:.4f}" if isinstance(v, float) else f"{k:32s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
