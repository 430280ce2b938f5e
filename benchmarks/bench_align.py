"""Alignment speed on a 4-minute pair, against plain ``librosa.sequence.dtw`` on the same features.

How to run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_align.py [--seconds 240] [--repeats 2]

What to expect: one line per method with the best wall time of ``--repeats`` runs, and the ratio
of the jump-aware alignment (features + unit costs + segmental DP with jumps) to the baseline
(the same frame features + monotone DTW, which cannot follow cuts, loops or reorders). The goal
(issue 4) is under 10 s for the alignment of a 4-minute pair on one core.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def _pair(seconds: float, workdir: Path) -> tuple:
    from editorbot.audio.io import analysis_signal, load_audio
    from editorbot.commands.demo_data import main as demo_data
    from editorbot.editing.decisions import DecisionList

    args = ["--out", str(workdir), "--tracks", "1", "--seed", "11", "--style", "remix"]
    demo_data([*args, "--min-seconds", str(seconds), "--max-seconds", str(seconds)])
    raw = load_audio(next((workdir / "input").glob("*_raw.wav")))
    edit = load_audio(next((workdir / "desired_output").glob("*_edit.wav")))
    truth = DecisionList.load(next((workdir / "truth").glob("*.json")))
    return analysis_signal(raw), analysis_signal(edit), truth.beat_times


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    import librosa
    import torch

    from editorbot.editing.align import AlignConfig, align, frame_features

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    config, sr = AlignConfig(), 22050
    with tempfile.TemporaryDirectory() as tmp:
        y_raw, y_edit, beat_times = _pair(args.seconds, Path(tmp))

    def baseline() -> None:
        R = frame_features(y_raw, sr=sr, config=config)
        E = frame_features(y_edit, sr=sr, config=config)
        librosa.sequence.dtw(X=R, Y=E, metric="sqeuclidean", backtrack=True)

    def ours() -> None:
        align(y_raw, y_edit, sr=sr, beat_times=beat_times, config=config)

    baseline()  # warm-up: librosa's lazy imports and caches
    t_base = _best(baseline, args.repeats)
    t_ours = _best(ours, args.repeats)
    print(
        f"pair: raw {len(y_raw) / sr:.0f} s, edit {len(y_edit) / sr:.0f} s, "
        f"{len(beat_times)} raw beats, hop {config.hop_length}"
    )
    print(f"baseline librosa.sequence.dtw (same features): {t_base:.2f} s")
    print(f"editorbot align (jump DP, {args.repeats} runs, best): {t_ours:.2f} s")
    print(f"ratio align / baseline: {t_ours / t_base:.2f}")


if __name__ == "__main__":
    main()
