"""Benchmark: editorbot's beat grid vs. plain librosa beat tracking on the same 3-minute track.

Two pipelines, one thread (run with ``OMP_NUM_THREADS=1``), on a 3-minute drum-and-bass pattern
at 174 BPM (librosa's default log-normal tempo prior around 120 BPM halves it):

- ``editorbot``: :func:`editorbot.audio.beats.track_beats` (numpy mel onset envelopes, flat
  tempo prior, DP after Ellis 2007, octave check, attack snap, edge extension, downbeat phase).
- ``librosa``: ``librosa.beat.beat_track(y=y, sr=sr)`` with its defaults. The named baseline.

Two costs each:

- warm: in this process, best of ``--repeats`` calls after one warm-up call (CPU seconds of
  the process: both pipelines run on one thread, and on a shared machine wall time measures
  the other jobs' load as much as the code);
- first call: in a fresh Python process, importing the pipeline's module and tracking once, as
  ``editorbot edit`` pays it (best of ``--fresh`` processes; CPU seconds of the process, which
  the machine's other load disturbs less than wall time, and wall seconds).

Accuracy is ``mir_eval.beat.f_measure`` (±70 ms) against the generated beats.

How to run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_beats.py [--json] [--repeats 3]

With ``--demo DIR`` (a folder made by ``editorbot demo-data``) it times nothing and instead
scores the tempo level and F-measure of every ``DIR/input/*_raw.wav`` against
``DIR/truth/*.json`` ``beat_times`` (scored up to the last true beat + 70 ms: the songs' decaying
tails have no beats), one line per track and the mean.

What to expect: warm ``ratio`` (= editorbot_s / librosa_s) near 1 (editorbot's numpy STFT and
DP cost about what librosa's do; the checks cost little); ``first_ratio`` well below 1 (librosa's
import builds numba kernels, editorbot's tracker imports numpy only); editorbot's F-measure near
1 where librosa's default prior halves the tempo (F about 0.67).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import librosa
import mir_eval
import numpy as np

from editorbot.audio.beats import track_beats
from editorbot.audio.io import analysis_signal, load_audio
from editorbot.datasets.testsignals import drum_pattern

SR = 22050
TEMPO_BPM = 174.0


_FIRST_CALL = """
import sys, time
from editorbot.datasets.testsignals import drum_pattern
y = drum_pattern(tempo_bpm={tempo}, duration_sec={seconds}, sr={sr}, bass=True).y
cpu, wall = time.process_time(), time.perf_counter()
{body}
print(time.process_time() - cpu, time.perf_counter() - wall)
"""
"""A fresh process: make the track (not timed), then import the pipeline and track once."""
_BODIES = {
    "editorbot": "from editorbot.audio.beats import track_beats\ntrack_beats(y, sr={sr})",
    "librosa": "import librosa\nlibrosa.beat.beat_track(y=y, sr={sr})",
}


def _first_call(name: str, *, seconds: float, fresh: int) -> tuple[float, float]:
    """[s] best CPU and wall time of import + first call over ``fresh`` new processes."""
    body = _BODIES[name].format(sr=SR)
    code = _FIRST_CALL.format(tempo=TEMPO_BPM, seconds=seconds, sr=SR, body=body)
    runs = []
    for _ in range(fresh):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"first-call run of {name} failed: {out.stderr.strip()[-500:]}")
        cpu, wall = (float(v) for v in out.stdout.split())
        runs.append((cpu, wall))
    return min(c for c, _ in runs), min(w for _, w in runs)


def _best_of(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    fn()  # warm-up: librosa's numba kernels load on first use
    times, out = [], np.zeros(0)
    for _ in range(repeats):
        start = time.process_time()
        out = fn()
        times.append(time.process_time() - start)
    return min(times), out


_LEVEL_TOLERANCE = 0.03
"""[1] a tracked tempo within 3 % of the true one is at the right level (2:3 is 33 % off)."""
_WINDOW_SEC = 0.07
"""[s] mir_eval's F-measure window; true beats end, the scored grid ends this much later."""


def _score_demo(folder: Path, *, as_json: bool) -> int:
    """Tempo level and F-measure of each demo track against its truth; prints, returns 0."""
    rows = []
    for truth_path in sorted((folder / "truth").glob("*.json")):
        truth = np.asarray(json.loads(truth_path.read_text())["beat_times"], dtype=np.float64)
        audio = load_audio(folder / "input" / f"{truth_path.stem}_raw.wav")
        grid = track_beats(analysis_signal(audio), sr=SR, name=str(truth_path))
        estimate = grid.beat_times[grid.beat_times < truth[-1] + _WINDOW_SEC]
        f = mir_eval.beat.f_measure(
            mir_eval.beat.trim_beats(truth), mir_eval.beat.trim_beats(estimate)
        )
        true_bpm = 60.0 / float(np.median(np.diff(truth)))  # [s/min] / [s/beat]
        rows.append(
            {
                "track": truth_path.stem,
                "true_bpm": round(true_bpm, 1),
                "tempo_bpm": round(grid.tempo_bpm, 1),
                "right_level": abs(grid.tempo_bpm / true_bpm - 1.0) <= _LEVEL_TOLERANCE,
                "f_measure": round(float(f), 3),
            }
        )
    summary = {
        "n_tracks": len(rows),
        "right_level": sum(r["right_level"] for r in rows),
        "mean_f_measure": round(float(np.mean([r["f_measure"] for r in rows])), 3),
    }
    if as_json:
        print(json.dumps({"tracks": rows, **summary}))
    else:
        for r in rows:
            print(
                f"{r['track']:>16}: true {r['true_bpm']:6.1f} BPM, tracked {r['tempo_bpm']:6.1f}"
                f" BPM, F {r['f_measure']:.3f}"
            )
        print(json.dumps(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per pipeline (min)")
    parser.add_argument("--seconds", type=float, default=180.0, help="[s] track length")
    parser.add_argument("--fresh", type=int, default=3, help="fresh processes per first call")
    parser.add_argument(
        "--demo", type=Path, default=None, help="score the tempo level on this demo-data folder"
    )
    args = parser.parse_args(argv)
    if args.demo is not None:
        return _score_demo(args.demo, as_json=args.json)
    track = drum_pattern(tempo_bpm=TEMPO_BPM, duration_sec=args.seconds, sr=SR, bass=True)

    def ours() -> np.ndarray:
        return track_beats(track.y, sr=SR).beat_times

    def theirs() -> np.ndarray:
        return np.asarray(librosa.beat.beat_track(y=track.y, sr=SR, units="time")[1])

    truth = mir_eval.beat.trim_beats(track.beat_times)
    result: dict[str, float] = {}
    for name, fn in (("editorbot", ours), ("librosa", theirs)):
        seconds, beats = _best_of(fn, args.repeats)
        result[f"{name}_s"] = round(seconds, 4)
        f = mir_eval.beat.f_measure(truth, mir_eval.beat.trim_beats(beats))
        result[f"{name}_f_measure"] = round(float(f), 3)
    result["ratio"] = round(result["editorbot_s"] / result["librosa_s"], 2)
    for name in ("editorbot", "librosa"):
        cpu, wall = _first_call(name, seconds=args.seconds, fresh=args.fresh)
        result[f"{name}_first_cpu_s"] = round(cpu, 3)
        result[f"{name}_first_wall_s"] = round(wall, 3)
    first_ratio = result["editorbot_first_cpu_s"] / result["librosa_first_cpu_s"]
    result["first_ratio"] = round(first_ratio, 3)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>20}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
