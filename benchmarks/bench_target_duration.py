"""Benchmark: what ``edit --target-duration`` adds to an edit of a 3-minute track, on one core.

Issue 16's budget: the constrained decode adds <= 1 s. Same track and checkpoint as
``bench_edit.py`` (180 s stereo 44.1 kHz demo song, seed 7; the untrained compact network forced
to KEEP one BEAT: one policy step per beat), plus ``--untrained``: the same network unforced
(its greedy edit is some other length, so every target needs the search).

Measured in this process, pinned to one CPU with ``OMP_NUM_THREADS=1``, CPU time (user + sys):
``analysis`` (beats + features), ``policy`` (the unconstrained greedy episode, as ``edit``
runs it), ``render``; then ``scores`` (the same episode recording the heads' log-probabilities,
which the target path runs instead of ``policy``) and ``decode`` (the constrained search) per
target (40 %, 80 %, 120 %, 150 % of the raw length). ``added`` = scores - policy + decode; the
ratio is ``added`` over the unconstrained edit's in-process time (analysis + policy + render).

How to run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_target_duration.py [--untrained] \\
        [--workdir /tmp/bench_edit] [--cpu 0] [--json]

What to expect: ``added`` well under 1 s per target; the rendered lengths within one bar.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_edit import _demo_song, _keep_beat_checkpoint

RATIOS = (0.4, 0.8, 1.2, 1.5)
"""Targets as a share of the raw length."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_edit"), help="scratch")
    parser.add_argument("--untrained", action="store_true", help="unforced untrained network")
    parser.add_argument("--cpu", type=int, default=0, help="CPU to pin to (-1: no pinning)")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args(argv)
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    args.workdir.mkdir(parents=True, exist_ok=True)
    audio = _demo_song(args.workdir / "song.wav")
    if args.untrained:
        checkpoint = _keep_beat_checkpoint(args.workdir / "ckpt_untrained" / "best", forced=False)
    else:
        checkpoint = _keep_beat_checkpoint(args.workdir / "ckpt" / "best")
    result = _measure(audio, checkpoint)
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))
    return 0


def _cpu(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.process_time()
    out = fn()
    return out, time.process_time() - t


def _measure(audio_path: Path, checkpoint: Path) -> dict[str, Any]:
    import torch

    from editorbot.audio.analysis import analyze
    from editorbot.audio.io import load_audio
    from editorbot.editing.decisions import decisions_from_actions
    from editorbot.editing.render import render_decision_list
    from editorbot.envs.editing_env import EditingEnv
    from editorbot.envs.track_table import table_from_analysis
    from editorbot.inference.rl import load_policy, run_policy
    from editorbot.target_duration import Grid, TargetSpec, fit_actions, policy_log_probs

    torch.set_num_threads(1)
    audio = load_audio(audio_path)
    net, normalizer, meta = load_policy(checkpoint)
    analysis, t_analysis = _cpu(lambda: analyze(audio))
    g = analysis.grid
    ratio = meta.get("target_ratio", 1.0)
    table = table_from_analysis("bench", analysis, normalizer, target_ratio=ratio)
    env = EditingEnv({**meta["env_config"], "tables": [table]})
    (free, _), t_policy = _cpu(lambda: run_policy(net, env, 0))
    dl = decisions_from_actions(
        free, n_beats=g.n_beats, sample_rate=audio.sr, beat_times=g.beat_times,
        downbeat_phase=g.downbeat_phase,
    )  # fmt: skip
    _, t_render = _cpu(lambda: render_decision_list(audio, dl))
    (greedy, lp), t_scores = _cpu(lambda: policy_log_probs(net, env, 0))
    assert (greedy == free).all()
    grid = Grid.of(g.beat_times, sr=audio.sr, n_samples=audio.n_samples, phase=g.downbeat_phase)
    t_edit = t_analysis + t_policy + t_render
    rows = []
    for ratio in RATIOS:
        spec = TargetSpec(ratio * audio.duration_sec)
        (_, fit), t_decode = _cpu(lambda spec=spec: fit_actions(greedy, lp, grid, spec))
        added = t_scores - t_policy + t_decode
        rows.append({"ratio": ratio, "decode_cpu_s": t_decode, "added_cpu_s": added,
                     "added_over_edit": added / t_edit, "constrained": fit["constrained"],
                     "error_s": fit["planned_duration_sec"] - spec.target_sec})  # fmt: skip
    return {
        "track_sec": audio.duration_sec,
        "n_beats": g.n_beats,
        "policy_steps": len(free),
        "analysis_cpu_s": t_analysis,
        "policy_cpu_s": t_policy,
        "render_cpu_s": t_render,
        "scores_cpu_s": t_scores,
        "targets": rows,
        "load_average": os.getloadavg()[0],
    }


if __name__ == "__main__":
    raise SystemExit(main())
