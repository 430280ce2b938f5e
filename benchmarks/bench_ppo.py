"""PPO sampling throughput: the policy's forward against RLlib's own ceiling, in the same run.

How to run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ppo.py [--steps N]
[--envs 1 8] [--module compact] [--append]``

What it measures: env steps/s of the driver's local env runner's ``sample`` (``num_env_runners``
= 0, one torch thread) on 256-beat synthetic tracks, for each ``num_envs_per_env_runner``, with

- ``ceiling``: a trivial RLModule of the same spaces (one linear layer from the globals to the
  620 logits, the same autoregressive distribution): what RLlib's connectors, episode
  bookkeeping and the env cost without a policy network, the most any module can reach;
- ``before``: the design before the static / cursor split (:class:`WindowModule`: every step
  encodes its whole window with :class:`HybridNATTENEncoder`, kernel 33 as then for compact
  and default), at the same width;
- ``policy``: :class:`EditorRLModule` (the module ``train rl`` samples with: each track's static
  beats encoded once, a cursor attention per step).

Each is printed as a ratio to the ceiling measured in the same run (the comparable number on a
shared machine), and the policy as a ratio to ``before``. ``--append`` adds the table to
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import torch
from env_tables import make_table
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.core.rl_module.torch import TorchRLModule

from editorbot.editing.actions import N_TYPES
from editorbot.envs import spaces as obs_keys
from editorbot.envs.track_table import save_tables
from editorbot.models.distribution import N_INPUTS, AutoregressiveEditDistribution, pack_logits
from editorbot.models.natten_encoder import HybridNATTENEncoder
from editorbot.models.policy_net import ConditionedHeads, log_mask, mlp
from editorbot.models.rl_module import ModuleConfig, _encoder_config, _module_config
from editorbot.training.ppo import PPOSettings, ppo_config


class TrivialModule(TorchRLModule, ValueFunctionAPI):
    """One linear layer from the globals to the 620 logits: RLlib's cost without a network."""

    def setup(self) -> None:
        (n_globals,) = self.observation_space[obs_keys.OBS_GLOBALS].shape
        self._logits = torch.nn.Linear(n_globals, N_INPUTS)
        self._value = torch.nn.Linear(n_globals, 1)
        self.action_dist_cls = AutoregressiveEditDistribution

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {Columns.ACTION_DIST_INPUTS: self._logits(batch[Columns.OBS][obs_keys.OBS_GLOBALS])}

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        return self._value(batch[Columns.OBS][obs_keys.OBS_GLOBALS]).squeeze(-1)


class WindowModule(TorchRLModule, ValueFunctionAPI):
    """The policy before the static / cursor split: the whole window through
    :class:`HybridNATTENEncoder` (learned window positions) at every step, the same heads."""

    def setup(self) -> None:
        cfg = _module_config(self.model_config)
        self._encoder = HybridNATTENEncoder(_encoder_config(cfg, self.observation_space))
        self._type_head = mlp(cfg.hidden, cfg.head_hidden, N_TYPES)
        self._heads = ConditionedHeads(cfg.hidden, cfg.head_hidden, cfg.embedding_dim)
        self._value = mlp(cfg.hidden, cfg.head_hidden, 1)
        self.action_dist_cls = AutoregressiveEditDistribution

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        obs = batch[Columns.OBS]
        emb = self._encoder(obs[obs_keys.OBS_TOKENS], obs[obs_keys.OBS_GLOBALS])
        size, amount = self._heads(emb)
        logits = (
            self._type_head(emb) + log_mask(obs[obs_keys.OBS_TYPE_MASK]),
            size + log_mask(obs[obs_keys.OBS_SIZE_MASK]),
            amount + log_mask(obs[obs_keys.OBS_AMOUNT_MASK])[:, :, None, :],
        )
        return {Columns.ACTION_DIST_INPUTS: pack_logits(*logits)}

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        obs = batch[Columns.OBS]
        emb = self._encoder(obs[obs_keys.OBS_TOKENS], obs[obs_keys.OBS_GLOBALS])
        return self._value(emb).squeeze(-1)


BEFORE_KERNEL = {"tiny": 9, "compact": 33, "default": 33}
"""[beats] the kernel each configuration had before the split (what ``before`` runs)."""


def _rate(runner: Any, n_envs: int, steps: int) -> float:
    """Env steps/s of one ``sample`` of ``steps`` env steps (after a warm-up sample)."""
    runner.sample(num_timesteps=4 * n_envs, random_actions=False)  # warm-up: first forward
    start = time.perf_counter()
    episodes = runner.sample(num_timesteps=steps, random_actions=False)
    elapsed = time.perf_counter() - start
    return sum(len(e) for e in episodes) / elapsed


def _measure(
    tables: str, n_envs: int, steps: int, module: ModuleConfig, before: ModuleConfig, rounds: int
) -> dict[str, float]:
    """{"ceiling", "before", "policy"}: env steps/s with ``n_envs`` vectorised envs, the best of
    ``rounds`` rounds that take the three in turn (a shared machine's load moves between
    samples; taking them in turn and keeping each one's best compares like with like)."""
    settings = PPOSettings(num_env_runners=0, num_envs_per_env_runner=n_envs,
                           train_batch_size=steps, bc_weight=0.0)  # fmt: skip
    config = ppo_config(settings, env_config={"tables": tables}, module=module, seed=0)
    trivial = config.copy(copy_frozen=False).rl_module(
        rl_module_spec=RLModuleSpec(module_class=TrivialModule)
    )
    window = config.copy(copy_frozen=False).rl_module(
        rl_module_spec=RLModuleSpec(
            module_class=WindowModule, model_config=dataclasses.asdict(before)
        )
    )
    algos = {"ceiling": trivial.build_algo(), "before": window.build_algo(),
             "policy": config.build_algo()}  # fmt: skip
    runners = {name: algo.env_runner_group.local_env_runner for name, algo in algos.items()}
    rates: dict[str, list[float]] = {name: [] for name in runners}
    try:
        for _ in range(rounds):
            for name, runner in runners.items():
                rates[name].append(_rate(runner, n_envs, steps))
    finally:
        for algo in algos.values():
            algo.stop()
    return {name: max(r) for name, r in rates.items()}


def _table(rates: dict[int, dict[str, float]]) -> str:
    head = ("| envs per runner | ceiling (trivial module) | before (window) | policy | "
            "before / ceiling | policy / ceiling | policy / before |\n"
            "|---|---|---|---|---|---|---|\n")  # fmt: skip
    rows = [
        f"| {k} | {r['ceiling']:,.0f} | {r['before']:,.0f} | {r['policy']:,.0f} | "
        f"{r['before'] / r['ceiling']:.2f} | {r['policy'] / r['ceiling']:.2f} | "
        f"{r['policy'] / r['before']:.1f} |"
        for k, r in rates.items()
    ]
    return head + "\n".join(rows) + "\n"


def _checked_tables(folder: Path) -> Path:
    """``folder`` if it holds track tables; otherwise one line naming it and the fix."""
    if not folder.is_dir() or not any(folder.glob("*.npz")):
        raise SystemExit(
            f"bench_ppo: {folder} holds no track tables (*.npz); pass an `editorbot bc-data` "
            "output's tables/ folder, e.g. a demo's OUT/bc_data/tables"
        )
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2048, help="env steps per measurement")
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--module", choices=("tiny", "compact", "default"), default="compact")
    parser.add_argument("--rounds", type=int, default=3, help="turns per setting (best kept)")
    parser.add_argument("--append", action="store_true", help="append to RESULTS.md")
    parser.add_argument(
        "--tables",
        type=Path,
        help="sample these tables (e.g. a demo's OUT/bc_data/tables) instead of synthetic ones",
    )
    args = parser.parse_args(argv)
    import ray

    from editorbot.training.local_ray import init_local

    torch.set_num_threads(1)
    init_local(2)
    module = ModuleConfig() if args.module == "default" else getattr(ModuleConfig, args.module)()
    before = dataclasses.replace(module, kernel_size=BEFORE_KERNEL[args.module])
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        if args.tables is None:
            save_tables(tmp, [make_table(i, n_phrases=16) for i in range(4)], None)
            tables, what = tmp, "256-beat synthetic tracks"
        else:
            tables, what = str(_checked_tables(args.tables)), f"the tables of {args.tables}"
        rates = {k: _measure(tables, k, args.steps, module, before, args.rounds) for k in args.envs}
    ray.shutdown()
    load.append(os.getloadavg()[0])
    text = (
        f"\n### bench_ppo — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"`ModuleConfig.{args.module}`\n\n"
        f"Env steps/s of the local env runner's `sample`, {args.steps} env steps per "
        f"measurement, best of {args.rounds} rounds taking the three in turn, "
        f"`ModuleConfig.{args.module}` ({dataclasses.asdict(module)['hidden']} "
        f"hidden), one torch thread, {what}; load average {load[0]:.1f} "
        f"before, {load[1]:.1f} after, on {os.cpu_count()} cores (the ratios are the "
        "comparable numbers).\n\n" + _table(rates)
    )
    print(text)
    if args.append:
        with open(Path(__file__).with_name("RESULTS.md"), "a") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
