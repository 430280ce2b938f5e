"""Benchmark: peak memory of ``editorbot edit`` on a 10-minute stereo track, and the refusal of a
2-hour one.

Issue 18's goal: peak RSS <= 1.5 x (decoded audio + model). ``decoded audio`` is the float32
signal ``load_audio`` would hold (frames x channels x 4 bytes); ``model`` is the policy's
weights file. The interpreter and torch alone take far more than that (about 0.7-0.8 GB), so
the goal is read as: the peak's growth above the fixed cost <= 1.5 x (decoded audio + model),
the fixed cost measured in the same run by children that do everything but the track:

- ``imports_only``: imports the edit path (interpreter, numpy, torch, soundfile, editorbot);
- ``imports_policy``: the same, then loads the checkpoint's policy (``inference.rl.load_policy``:
  building it on torch's meta device first imports sympy, about 0.12 GB, whatever the input);
- ``edit_20s``: ``edit`` on the song's first 20 s (every lazy initialisation of the path:
  torch's convolution, numba's compiled kernels), the fixed cost of the whole command.

Each growth is printed as a ratio to (decoded audio + model), as is the raw peak's ratio.

Setup (in ``--workdir``, reused when there): a 600 s radio-style demo song (stereo, 44.1 kHz,
16-bit WAV, seed 7) and the untrained run-default checkpoint of ``bench_edit.py`` (greedy KEEP
one BEAT at every step). The 2-hour input is a sparse file: a WAV header for 7200 s of stereo
44.1 kHz 16-bit audio, the rest a hole (nothing decodes it: ``edit`` refuses it from the
header).

Two peaks per child: ``/usr/bin/time -v``'s "Maximum resident set size" (the whole process,
including the interpreter's teardown, which by itself adds about 0.18 GB to a child that only
imports torch), and ``VmHWM`` read by an ``atexit`` hook just before that teardown (the peak of
the work itself). Each command runs in a child with that hook (``python -c``; ``edit`` through
``runpy`` as ``python -m editorbot`` does).

How to run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_edit_memory.py [--workdir /tmp/bem]

What to expect (2-core box): the 10-minute edit at about 1.3 GB peak, most of it the fixed
cost; its growth above the imports-only child about 1.4 x (decoded audio + model) on the
whole-process peak, 1.7 x before teardown, about 1.0 x above the child that also loads the
policy; the 2-hour input refused in about a second with one line naming the limit.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_edit

SONG_SECONDS = 600.0
"""[s] the 10-minute track."""
LONG_SECONDS = 7200.0
"""[s] the 2-hour track that must be refused."""
SHORT_SECONDS = 20.0
"""[s] the short edit whose peak is the fixed cost of the command."""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=Path("/tmp/bench_edit_memory"))
    args = p.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    bench_edit.SONG_SECONDS = SONG_SECONDS
    song = bench_edit._demo_song(args.workdir / "song_600s.wav")
    ckpt = bench_edit._keep_beat_checkpoint(args.workdir / "best")
    long = _sparse_wav(args.workdir / "two_hours.wav", LONG_SECONDS)
    short = _head(song, args.workdir / "song_20s.wav", SHORT_SECONDS)
    edit = [sys.executable, "-c", _HWM_HOOK + _RUN_CLI, "edit"]
    out = args.workdir / "edited.wav"
    result: dict[str, Any] = {}
    imports = ("import editorbot.inference.rl, editorbot.audio.analysis, editorbot.editing.render, "
               "torch, soundfile\n")  # fmt: skip
    result["imports_only"] = _peak([sys.executable, "-c", _HWM_HOOK + imports])
    policy = f"{imports}editorbot.inference.rl.load_policy({str(ckpt)!r})\n"
    result["imports_policy"] = _peak([sys.executable, "-c", _HWM_HOOK + policy])
    result["edit_20s"] = _peak([*edit, str(short), "--checkpoint", str(ckpt), "--output",
                                str(args.workdir / "edited_20s.wav")])  # fmt: skip
    result["edit_10min"] = _peak([*edit, str(song), "--checkpoint", str(ckpt), "--output",
                                  str(out)])  # fmt: skip
    result["refuse_2h"] = _peak([*edit, str(long), "--checkpoint", str(ckpt), "--output",
                                 str(args.workdir / "long_out.wav")], expect_fail=True)  # fmt: skip
    import soundfile as sf

    info = sf.info(str(song))
    audio_bytes = info.frames * info.channels * 4
    model_bytes = (ckpt / "rl_module" / "policy_net.pt").stat().st_size
    budget = audio_bytes + model_bytes
    result.update(decoded_audio_bytes=audio_bytes, model_bytes=model_bytes)
    for kind in ("peak_rss_bytes", "work_hwm_bytes"):
        peak = result["edit_10min"][kind]
        result[kind] = {
            "ratio_to_audio_plus_model": peak / budget,
            **{
                f"growth_over_{base}_ratio": (peak - result[base][kind]) / budget
                for base in ("imports_only", "imports_policy", "edit_20s")
            },
        }
    result["load_average"] = os.getloadavg()[0]
    print(json.dumps(result, indent=1))
    return 0


def _peak(command: list[str], *, expect_fail: bool = False) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True,
                          env=env, check=False)  # fmt: skip
    wall = time.perf_counter() - start
    if (done.returncode != 0) != expect_fail:
        raise SystemExit(f"{' '.join(command)}: exit {done.returncode}: {done.stderr[-2000:]}")
    kb = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    hwm = re.search(r"^editorbot-bench-hwm (\d+)$", done.stderr, re.MULTILINE)
    assert kb is not None and hwm is not None, done.stderr[-500:]
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("editorbot:")]
    return {"peak_rss_bytes": int(kb.group(1)) * 1024, "work_hwm_bytes": int(hwm.group(1)) * 1024,
            "wall_s": round(wall, 2), "exit": done.returncode,
            "stderr_line": lines[0] if lines else None}  # fmt: skip


_HWM_HOOK = """import atexit, sys
def _hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            print("editorbot-bench-hwm", line.split()[1], file=sys.stderr)
atexit.register(_hwm)
"""
"""Prints the child's peak RSS [kB] when it exits, before the interpreter's teardown."""
_RUN_CLI = """import runpy
sys.argv[0] = "editorbot"
runpy.run_module("editorbot", run_name="__main__", alter_sys=True)
"""
"""``python -m editorbot ARGS`` inside the hooked child."""


def _head(song: Path, path: Path, seconds: float) -> Path:
    """The first ``seconds`` of ``song``, in its format (written once)."""
    if not path.exists():
        import soundfile as sf

        info = sf.info(str(song))
        y, sr = sf.read(str(song), frames=int(seconds * info.samplerate), dtype="int16")
        sf.write(str(path), y, sr, subtype=info.subtype)
    return path


def _sparse_wav(path: Path, seconds: float, sr: int = 44100, channels: int = 2) -> Path:
    """A 16-bit PCM WAV of ``seconds`` whose samples are a hole in the file (no disk used)."""
    data = int(seconds * sr) * channels * 2
    header = (
        b"RIFF"
        + struct.pack("<I", 36 + data)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, sr, sr * channels * 2, channels * 2, 16)
        + b"data"
        + struct.pack("<I", data)
    )
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(len(header) + data)
    return path


if __name__ == "__main__":
    raise SystemExit(main())
