"""Benchmark: peak memory of ``editorbot edit`` on a 10-minute stereo track, and the refusal of a
2-hour one.

Issue 18's goal: peak RSS <= 1.5 x (decoded audio + model). ``decoded audio`` is the float32
signal ``load_audio`` holds (frames x channels x 4 bytes); ``model`` is the policy's weights
file. Both are printed next to the measured peak, with the ratio, and with the RSS of a child
that only imports the edit path (the interpreter, numpy, torch, soundfile: the fixed cost no
input size changes), so the part that grows with the input can be read off too.

Setup (in ``--workdir``, reused when there): a 600 s radio-style demo song (stereo, 44.1 kHz,
16-bit WAV, seed 7) and the untrained run-default checkpoint of ``bench_edit.py`` (greedy KEEP
one BEAT at every step). The 2-hour input is a sparse file: a WAV header for 7200 s of stereo
44.1 kHz 16-bit audio, the rest a hole (nothing decodes it: ``edit`` refuses it from the
header).

Measured with ``/usr/bin/time -v`` ("Maximum resident set size") around each child.

How to run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_edit_memory.py [--workdir /tmp/bem]

What to expect: the 10-minute edit at about 1.3 GB peak, most of it the fixed import cost; the
2-hour input refused in about a second with one line naming the limit.
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=Path("/tmp/bench_edit_memory"))
    args = p.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    bench_edit.SONG_SECONDS = SONG_SECONDS
    song = bench_edit._demo_song(args.workdir / "song_600s.wav")
    ckpt = bench_edit._keep_beat_checkpoint(args.workdir / "best")
    long = _sparse_wav(args.workdir / "two_hours.wav", LONG_SECONDS)
    edit = [*bench_edit._editorbot_command(), "edit"]
    out = args.workdir / "edited.wav"
    result: dict[str, Any] = {}
    imports = [sys.executable, "-c", "import editorbot.inference, editorbot.audio.analysis, "
               "editorbot.editing.render, torch, soundfile"]  # fmt: skip
    result["imports_only"] = _peak(imports)
    result["edit_10min"] = _peak([*edit, str(song), "--checkpoint", str(ckpt), "--output",
                                  str(out)])  # fmt: skip
    result["refuse_2h"] = _peak([*edit, str(long), "--checkpoint", str(ckpt), "--output",
                                 str(args.workdir / "long_out.wav")], expect_fail=True)  # fmt: skip
    import soundfile as sf

    info = sf.info(str(song))
    audio_bytes = info.frames * info.channels * 4
    model_bytes = (ckpt / "rl_module" / "policy_net.pt").stat().st_size
    peak = result["edit_10min"]["peak_rss_bytes"]
    result.update(
        decoded_audio_bytes=audio_bytes,
        model_bytes=model_bytes,
        ratio_to_audio_plus_model=peak / (audio_bytes + model_bytes),
        growth_over_imports_ratio=(peak - result["imports_only"]["peak_rss_bytes"]) / audio_bytes,
        load_average=os.getloadavg()[0],
    )
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
    assert kb is not None, done.stderr[-500:]
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("editorbot:")]
    return {"peak_rss_bytes": int(kb.group(1)) * 1024, "wall_s": round(wall, 2),
            "exit": done.returncode, "stderr_line": lines[0] if lines else None}  # fmt: skip


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
