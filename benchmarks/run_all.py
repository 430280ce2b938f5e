"""The quick benchmarks in one go: what ``make bench`` runs (a few minutes on 2 cores).

How to run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/run_all.py [--only render env]

What to expect: each benchmark's own output in turn (each prints its result as a ratio to the
baseline it names), then one summary line per benchmark with its wall time and exit status.
The long ones (``bench_ppo.py``, ``bench_scaling.py``, ``bench_edit.py``, ``label_suite.py``)
are left out: run them on their own, as their docstrings say. Exits 1 if any benchmark failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUICK: dict[str, list[str]] = {
    "render": ["bench_render.py", "--repeats", "3"],
    "env": ["bench_env.py", "--steps", "20000"],
    "beats": ["bench_beats.py", "--repeats", "2", "--fresh", "1", "--seconds", "60"],
    "features": ["bench_features.py", "--repeats", "3", "--seconds", "60"],
}
"""Name -> script and the arguments that keep it to about a minute."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(QUICK), help="run only these")
    args = parser.parse_args(argv)
    summary = []
    for name in args.only or list(QUICK):
        script, *rest = QUICK[name]
        print(f"== {name}: {script} {' '.join(rest)}", flush=True)
        start = time.perf_counter()
        rc = subprocess.call([sys.executable, str(HERE / script), *rest])
        summary.append((name, time.perf_counter() - start, rc))
    print("\nbenchmark   wall [s]   status")
    for name, wall, rc in summary:
        print(f"{name:<11} {wall:8.1f}   {'ok' if rc == 0 else f'FAILED (exit {rc})'}")
    return int(any(rc for _, _, rc in summary))


if __name__ == "__main__":
    sys.exit(main())
