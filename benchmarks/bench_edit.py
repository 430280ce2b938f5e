"""Benchmark: ``editorbot edit`` on a 3-minute stereo 44.1 kHz track, process start to files out.

Issue 5's goal is < 5 s on one core. The baseline is the track's own duration (real time):
``ratio`` = wall time / track duration.

Setup (in ``--workdir``, reused when already there): a 180 s radio-style demo song (stereo,
44.1 kHz, 16-bit WAV, seed 7) and, unless ``--checkpoint`` is given, a checkpoint of the
untrained run-default network (``ModuleConfig.compact``), written by the real save path
(``rl_train.write_best``), whose type and size biases are raised so that its greedy action is
always KEEP one BEAT: one policy step per beat, the policy loop's worst case (a trained editor
also takes bars and phrases) and the renderer's cheapest edit (no effects).

Measured, each in a fresh process pinned to one CPU (``sched_setaffinity``) with
``OMP_NUM_THREADS=1``:

- ``--runs`` runs of ``editorbot edit``: wall time and CPU time (user + sys of the child);
- one more run of the same command in a child that times each stage (wall and CPU) by wrapping
  the functions the edit path calls (nothing else changes): ``startup_and_exit`` (interpreter
  start and teardown), ``cli_import``, ``imports`` (the edit path's modules), ``load``
  (decode), ``resample`` (mono analysis signal), ``beats``, ``features``, ``policy_load``,
  ``policy_loop`` (of which ``policy_net``: the network forward and action choice, over
  ``policy_steps`` steps), ``render``, ``write``; and which heavy modules the run imported.

CPU time is the steadier number on a shared machine: wall time grows with the load average
(printed), CPU time much less.

How to run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_edit.py [--json] [--runs 3] \\
        [--checkpoint SAVE_DIR/best] [--audio track.wav] [--workdir /tmp/bench_edit] [--cpu 0]

What to expect: with an idle core, a few seconds wall (ratio ≈ 0.02-0.03), no ``ray`` among
the imported modules; the policy loop (about 360 steps at 120 BPM) well under a second.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SONG_SECONDS = 180.0
"""[s] length of the demo song (issue 5's 3-minute track)."""
SONG_SR = 44100
"""[Hz] sample rate of the demo song."""
SONG_SEED = 7
"""Seed of the demo song."""
FORCED_LOGIT = 100.0
"""Added to the KEEP type bias and the BEAT size bias of the built checkpoint: an untrained
network's logits are O(1), so the greedy chain is KEEP, BEAT at every step."""
HEAVY_MODULES = ("ray", "gymnasium", "scipy", "matplotlib", "pandas", "pyarrow", "librosa",
                 "numba", "torchaudio", "sklearn")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--runs", type=int, default=3, help="timed `editorbot edit` runs")
    parser.add_argument("--checkpoint", type=Path, help="an RL checkpoint (default: build one)")
    parser.add_argument("--audio", type=Path, help="the track (default: a generated demo song)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_edit"), help="scratch")
    parser.add_argument("--cpu", type=int, default=0, help="CPU to pin to (-1: no pinning)")
    parser.add_argument("--child-breakdown", nargs=3, metavar=("AUDIO", "CKPT", "OUT"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args(argv)
    if args.child_breakdown:
        print(json.dumps(_staged_edit(*args.child_breakdown)))
        return 0
    args.workdir.mkdir(parents=True, exist_ok=True)
    audio = args.audio or _demo_song(args.workdir / "song.wav")
    checkpoint = args.checkpoint or _keep_beat_checkpoint(args.workdir / "ckpt" / "best")
    result = _measure(audio, checkpoint, args.workdir, runs=args.runs, cpu=args.cpu)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>22}: {value}")
    return 0


def _measure(
    audio: Path, checkpoint: Path, workdir: Path, *, runs: int, cpu: int
) -> dict[str, Any]:
    import soundfile as sf

    duration_sec = float(sf.info(str(audio)).duration)
    out = workdir / "edited.wav"
    cli = [*_editorbot_command(), "edit", str(audio), "--checkpoint", str(checkpoint),
           "--output", str(out)]  # fmt: skip
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu_sec, _ = _run(cli, cpu)
        walls.append(wall)
        cpus.append(cpu_sec)
    child = [sys.executable, str(Path(__file__).resolve()), "--child-breakdown", str(audio),
             str(checkpoint), str(out)]  # fmt: skip
    wall, cpu_sec, stdout = _run(child, cpu)
    staged = json.loads(stdout.strip().splitlines()[-1])
    wall_s, cpu_s = staged.pop("wall_s"), staged.pop("cpu_s")
    # Interpreter start-up and teardown: what the child's own clocks did not see.
    wall_s["startup_and_exit"] = round(wall - wall_s.pop("total"), 3)
    cpu_s["startup_and_exit"] = round(cpu_sec - cpu_s.pop("total"), 3)
    return {
        "track_sec": round(duration_sec, 1),
        "runs_wall_s": [round(w, 2) for w in walls],
        "runs_cpu_s": [round(c, 2) for c in cpus],
        "best_wall_s": round(min(walls), 2),
        "best_cpu_s": round(min(cpus), 2),
        "ratio": round(min(walls) / duration_sec, 4),
        "goal_s": 5.0,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "pinned_cpu": cpu,
        "breakdown_wall_s": wall_s,
        "breakdown_cpu_s": cpu_s,
        **staged,
    }


def _editorbot_command() -> list[str]:
    script = Path(sys.executable).with_name("editorbot")
    return [str(script)] if script.exists() else [sys.executable, "-m", "editorbot"]


def _run(command: list[str], cpu: int) -> tuple[float, float, str]:
    """Wall time [s], CPU time [s] (user + sys) and stdout of one child run."""

    def pin() -> None:
        if cpu >= 0:
            os.sched_setaffinity(0, {cpu})

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, preexec_fn=pin,
                          check=False)  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")
    cpu_sec = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu_sec, done.stdout


class _Clock:
    """Wall and CPU seconds per stage, summed over calls."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._start = (time.perf_counter(), time.process_time())

    def add(self, stage: str, start: tuple[float, float]) -> None:
        self.wall[stage] = self.wall.get(stage, 0.0) + time.perf_counter() - start[0]
        self.cpu[stage] = self.cpu.get(stage, 0.0) + time.process_time() - start[1]
        self.calls[stage] = self.calls.get(stage, 0) + 1

    def wrap(self, owner: Any, name: str, stage: str) -> None:
        """Replace ``owner.name`` by a timed call of itself."""
        fn: Callable[..., Any] = getattr(owner, name)

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = (time.perf_counter(), time.process_time())
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(stage, start)

        setattr(owner, name, timed)

    def report(self) -> dict[str, Any]:
        self.add("total", self._start)
        return {
            "wall_s": {k: round(v, 3) for k, v in self.wall.items()},
            "cpu_s": {k: round(v, 3) for k, v in self.cpu.items()},
        }


def _staged_edit(audio: str, checkpoint: str, output: str) -> dict[str, Any]:
    """Run ``editorbot edit`` in this process with each stage's function wrapped in a timer."""
    clock = _Clock()
    start = (time.perf_counter(), time.process_time())
    import editorbot.cli as cli

    clock.add("cli_import", start)
    start = (time.perf_counter(), time.process_time())
    import editorbot.audio.analysis as analysis
    import editorbot.audio.io as audio_io
    import editorbot.commands.edit
    import editorbot.editing.decisions as decisions
    import editorbot.editing.render as render
    import editorbot.inference.rl as inference
    import editorbot.models.policy_net as policy_net

    assert editorbot.commands.edit  # imported here so that its imports count in `imports`
    clock.add("imports", start)
    clock.wrap(audio_io, "load_audio", "load")
    clock.wrap(analysis, "analysis_signal", "resample")
    clock.wrap(analysis, "track_beats", "beats")
    clock.wrap(analysis, "_beat_features", "features")
    clock.wrap(inference, "load_policy", "policy_load")
    clock.wrap(inference, "run_policy", "policy_loop")
    clock.wrap(policy_net.EditPolicyNet, "act", "policy_net")
    clock.wrap(render, "render_decision_list", "render")
    clock.wrap(audio_io, "write_audio", "write")
    clock.wrap(decisions.DecisionList, "save", "write")
    rc = cli.main(["edit", audio, "--checkpoint", checkpoint, "--output", output])
    assert rc == 0, rc
    cli.before_exit()  # what the command line's run does before the interpreter exits
    steps = clock.calls.get("policy_net", 0)
    return {
        **clock.report(),
        "policy_steps": steps,
        "heavy_modules_imported": [m for m in HEAVY_MODULES if m in sys.modules],
    }


def _demo_song(path: Path) -> Path:
    """A 180 s radio-style demo song, stereo 44.1 kHz 16-bit (written once)."""
    if path.exists():
        return path
    import soundfile as sf

    from editorbot.datasets.demo import DemoConfig, make_pair
    from editorbot.datasets.song import SongConfig

    song = SongConfig(min_seconds=SONG_SECONDS, max_seconds=SONG_SECONDS, sr=SONG_SR)
    pair = make_pair(SONG_SEED, 0, style="radio", config=DemoConfig(song=song))
    sf.write(str(path), pair.raw.y.T, pair.raw.sr, subtype="PCM_16")
    return path


def _keep_beat_checkpoint(path: Path, *, forced: bool = True) -> Path:
    """An untrained ``ModuleConfig.compact`` checkpoint (seed 0) whose greedy action is KEEP one
    BEAT (``forced``), or the network as initialised."""
    if path.exists():
        return path
    import dataclasses

    import numpy as np
    import torch

    from editorbot.audio.features import N_FEATURES
    from editorbot.editing.actions import ActionSize, ActionType
    from editorbot.envs.editing_env import EditingEnv
    from editorbot.envs.track_table import FeatureNormalizer, build_table
    from editorbot.models.rl_module import EditorRLModule
    from editorbot.training.ppo import RLRunConfig
    from editorbot.training.rl_train import write_best

    n = 64  # [beats] a placeholder track: the env only needs one to build its spaces
    table = build_table("spaces", features=np.zeros((n, N_FEATURES), np.float32), tempo_bpm=120.0,
                        beat_sec=0.5, energy=np.ones(n), phrase_start=np.zeros(n),
                        expert_actions=None)  # fmt: skip
    env = EditingEnv({"tables": [table]})
    cfg = RLRunConfig()
    torch.manual_seed(0)
    module = EditorRLModule(observation_space=env.observation_space,
                            action_space=env.action_space,
                            model_config=dataclasses.asdict(cfg.module))  # fmt: skip
    if forced:
        with torch.no_grad():
            module.policy_net.type_head[-1].bias[ActionType.KEEP] += FORCED_LOGIT
            module.policy_net.conditioned_heads.size_out.bias[ActionSize.BEAT] += FORCED_LOGIT
    normalizer = FeatureNormalizer(np.zeros(N_FEATURES, np.float32),
                                   np.ones(N_FEATURES, np.float32))  # fmt: skip
    note = "untrained, KEEP/BEAT" if forced else "untrained"
    write_best(path, module, normalizer, cfg, {}, [table], {"note": note})
    return path


if __name__ == "__main__":
    raise SystemExit(main())
