"""Benchmark: synthesising and editing a 3-minute demo track (``editorbot demo-data``).

Timings in one process, one thread (run with ``OMP_NUM_THREADS=1``), CPU time
(``time.process_time``, so other processes on a shared machine do not inflate it):

- ``synthesize``: :func:`~editorbot.datasets.song.compose` and
  :func:`~editorbot.datasets.perform.synthesize` of a 180 s stereo 44.1 kHz song (drums, bass,
  pads, keys, arp, lead, echoes, mix).
- ``eight_sines`` (the named baseline): eight full-length stereo sine partials summed in numpy
  (``np.sin`` over the whole track, 8 × 2 channels) — about the least any additive synthesis of
  a 3-minute stereo track costs in numpy.
- ``plan``: bar levels + a style's decision list (per style), without rendering.
- ``make_pair``: the whole pair (synthesis, plan, render) per style.

How to run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_demo.py [--repeats 3] [--json]

What to expect: ``synthesize`` about 1 s of CPU for 180 s of audio (> 100× real time), within a
small factor of ``eight_sines``; ``make_pair`` a few seconds at most (the effect DSP of the
remix style dominates).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from editorbot.datasets.demo import DemoConfig, bar_levels, make_pair
from editorbot.datasets.perform import synthesize
from editorbot.datasets.song import SongConfig, SynthResult, compose
from editorbot.datasets.styles import STYLES, EditContext, plan_edit

SR = 44100
SECONDS = 180.0
CONFIG = DemoConfig(song=SongConfig(min_seconds=SECONDS, max_seconds=SECONDS, bpm=120.0))


def _cpu(fn: Callable[[], object], repeats: int) -> float:
    """[s] best CPU time of ``repeats`` calls."""
    best = float("inf")
    for _ in range(repeats):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def _synth() -> SynthResult:
    rng = np.random.default_rng(0)
    return synthesize(compose(rng, config=CONFIG.song), sr=SR, rng=rng)


def _eight_sines() -> np.ndarray:
    t = np.arange(int(SECONDS * SR), dtype=np.float32) / SR
    y = np.zeros((2, t.size), np.float32)
    for k in range(8):
        y += np.sin(np.float32(2 * np.pi * 110.0 * (k + 1)) * t) / (k + 1)
    return y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    make_pair(0, 0, config=DemoConfig(song=SongConfig(min_seconds=20, max_seconds=20)))  # warm-up
    raw = _synth()
    results = {
        "synthesize": _cpu(_synth, args.repeats),
        "eight_sines": _cpu(_eight_sines, args.repeats),
    }
    song = compose(np.random.default_rng(0), config=CONFIG.song)
    ctx = EditContext(song.sections, bar_levels(raw.y, raw.beat_samples))
    for i, style in enumerate(STYLES):
        plan = partial(plan_edit, style, ctx, np.random.default_rng(0))
        results[f"plan[{style}]"] = _cpu(plan, args.repeats)
        results[f"make_pair[{style}]"] = _cpu(partial(make_pair, 0, i, config=CONFIG), 1)
    results["ratio_synthesize_to_eight_sines"] = results["synthesize"] / results["eight_sines"]
    results["realtime_factor_synthesize"] = SECONDS / results["synthesize"]
    if args.json:
        print(
            json.dumps({"machine": platform.processor() or platform.machine(), **results}, indent=1)
        )
        return
    for name, value in results.items():
        unit = "×" if name.startswith(("ratio", "realtime")) else "s CPU"
        print(f"{name:32s} {value:8.3f} {unit}")


if __name__ == "__main__":
    main()
