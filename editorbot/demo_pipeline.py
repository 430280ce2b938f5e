"""The steps of ``editorbot demo`` as library functions: demo data to an evaluated report.

1. :func:`make_data`: generate training pairs (seed 0) and held-out pairs (seed 1).
2. :func:`infer_labels`: align raw ↔ edit and infer the expert decisions (the alignment).
3. :func:`build_features`: beat features, tables and the replayed expert episodes (BC data).
4. :func:`train_rl`: BC pretraining, then PPO briefly (RLlib).
5. :func:`train_supervised`: the supervised baseline briefly (Ray Train in Ray Tune).
6. :func:`evaluate`: edit the held-out tracks with both, score them and the baselines, report.

``DemoSettings.quick()`` fits in about 3 minutes on 2 cores (the smoke test); the defaults in
about 15. In quick mode the alignment runs on the held-out pairs only (it costs 10-20 s per
minute of audio) and the learners train on the generator's true decisions; in full mode both
learners train on the labels inferred from the pairs on the tracked beat grid — what a user's
pairs give — and never see ``truth/``.

How to run: ``editorbot demo [--quick] [--out DIR]`` (:mod:`editorbot.commands.demo`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoSettings:
    """How big the demo run is."""

    n_train: int = 24
    """[tracks] generated training pairs (enough for both learners to beat keep-all by a wide
    margin within the demo's time; more tracks train BC better, see benchmarks/RESULTS.md)."""
    n_test: int = 8
    """[tracks] generated held-out pairs (the evaluation's songs; never trained or validated on)."""
    min_seconds: float = 45.0
    """[s] shortest generated track."""
    max_seconds: float = 75.0
    """[s] longest generated track."""
    label_train: bool = True
    """[bool] infer the training labels by alignment (else train on the true decisions)."""
    bc_epochs: int = 100
    """[passes] in-memory BC epochs before PPO (the best on the validation tracks is kept; 100
    reached 0.67 validation agreement where 30 reached 0.59, for about 30 s more)."""
    ppo_iters: int = 40
    """[iterations] PPO training iterations (the first ``VF_WARMUP_ITERS`` train the value head
    only)."""
    ppo_batch: int = 1024
    """[steps] env steps per PPO iteration (twice the 512 of before: 16 vectorised envs sample
    them, and learn from them in 128-step minibatches, in 0.89-0.99x the time 4 envs took for
    512; 4x the steps cost 1.4-1.8x the time and bought no held-out agreement:
    benchmarks/RESULTS.md, "PPO inside the demo's RL stage")."""
    ppo_envs: int = 16
    """[envs] vectorised envs of the driver's env runner."""
    ppo_minibatch: int = 128
    """[steps] PPO minibatch (one epoch over each iteration's batch)."""
    ppo_runners: int = 0
    """[actors] remote env runners (0: the driver samples)."""
    sup_epochs: int = 12
    """[epochs] supervised-baseline epochs (6 x 20 steps left the beat head at 0.53 held-out type
    accuracy, still rising; see benchmarks/RESULTS.md)."""
    sup_steps: int = 25
    """[steps] optimiser steps per supervised epoch."""
    sup_lr: float = 1e-3
    """[1] AdamW learning rate of the tiny supervised model (the seed's 3e-4 is for the full
    size)."""
    seed: int = 0
    """[seed] training data (held-out data uses seed + 1)."""
    style: str = "radio"
    """[name] the one editor whose style the demo learns (radio, dj or remix). A user's pairs
    come from one editor; mixing styles would ask one policy to imitate three people."""

    @classmethod
    def quick(cls) -> DemoSettings:
        """About 3 minutes on 2 cores: the smoke test's size."""
        return cls(
            n_train=3,
            n_test=1,
            min_seconds=24.0,
            max_seconds=32.0,
            label_train=False,
            bc_epochs=6,
            ppo_iters=1,
            ppo_batch=256,
            sup_epochs=1,
            sup_steps=4,
        )


def make_data(out: Path, s: DemoSettings) -> dict[str, Path]:
    """Generate ``OUT/data/train`` and ``OUT/data/test`` (seed layout with ``truth/``)."""
    from editorbot.datasets.demo import DemoConfig, generate
    from editorbot.datasets.song import SongConfig

    config = DemoConfig(song=SongConfig(min_seconds=s.min_seconds, max_seconds=s.max_seconds))
    dirs = {"train": out / "data" / "train", "test": out / "data" / "test"}
    generate(dirs["train"], n_tracks=s.n_train, seed=s.seed, style=s.style, config=config)
    generate(dirs["test"], n_tracks=s.n_test, seed=s.seed + 1, style=s.style, config=config)
    return dirs


def infer_labels(data_dir: Path, out: Path, *, truth_grid: bool = True) -> Path:
    """Inferred decision lists of every pair of ``data_dir`` into ``out`` (one Ray task each).

    With ``truth_grid`` the alignment uses the generator's beat grid (``truth/``'s
    ``beat_times``), so the labels compare with the truth beat for beat; without it, it tracks
    the beats itself, as on a user's data — the grid the learners then see at edit time too.
    The decisions themselves always come from the audio.
    """
    from editorbot.datasets.pairs import discover_pairs
    from editorbot.training.labels_job import label_pairs

    truth = data_dir / "truth"
    jobs = [
        (p.raw, p.edit, out / f"{p.name}.json", truth / f"{p.name}.json" if truth_grid else None)
        for p in discover_pairs(data_dir)
    ]
    for result in label_pairs(jobs):
        if "error" in result:  # reported, the others go on (a user's long job would too)
            logger.warning("labels: %s", result["error"])
    return out


def build_features(data_dir: Path, labels: Path, out: Path, *, window: int) -> Path:
    """Beat features, normalised tables and expert episodes (``editorbot bc-data``)."""
    from editorbot.training import bc_data

    bc_data.bc_data_from_labels(labels, data_dir, out, env_config={"window": window})
    return out


PPO_LR = 3e-4
"""[1/step] PPO's learning rate in the demo: above the seed's 1e-4, which moved the BC policy
too little in the demo's 40 iterations (benchmarks/RESULTS.md, "PPO over BC")."""
VF_WARMUP_ITERS = 2
"""[iterations] value-head-only iterations before PPO moves the BC policy."""


def rl_run_config(s: DemoSettings) -> Any:
    """A small RL run (the sizes of ``tune_configs/ppo_debug.yaml``, built in code so an
    installed package needs no YAML) with the demo's BC epochs and PPO batch."""
    from editorbot.models.rl_module import ModuleConfig
    from editorbot.training.ppo import BCSettings, PPOSettings, RLRunConfig

    ppo = PPOSettings(
        lr=PPO_LR,
        vf_warmup_iters=min(VF_WARMUP_ITERS, s.ppo_iters - 1),  # quick: its 1 iteration is PPO
        train_batch_size=s.ppo_batch,
        minibatch_size=min(s.ppo_minibatch, s.ppo_batch),
        num_epochs=1,
        num_env_runners=s.ppo_runners,
        num_envs_per_env_runner=s.ppo_envs,
        bc_batch_size=64,
    )
    bc = BCSettings(epochs=s.bc_epochs, eval_every=max(1, s.bc_epochs // 10), train_batch_size=64)
    return RLRunConfig(
        env={"window": 64},
        module=ModuleConfig.tiny(),
        ppo=ppo,
        bc=bc,
        validation_fraction=0.25,
        # The demo's held-out songs are its test set: every training pair trains or validates.
        test_fraction=0.0,
        hide_target_ratio=True,  # the demo edits its held-out songs with no target duration
        seed=s.seed,
    )


def train_rl(bc_dir: Path, save_dir: Path, s: DemoSettings) -> Path:
    """BC then PPO; returns the ``best/`` checkpoint."""
    from editorbot.training.rl_train import train_rl as _train

    _train(
        rl_run_config(s),
        bc_dir=bc_dir,
        save_dir=save_dir,
        stop_iters=s.ppo_iters,
        checkpoint_freq=s.ppo_iters,
    )
    return save_dir / "best"


def train_supervised(data_dir: Path, labels: Path, save_dir: Path, s: DemoSettings) -> Path:
    """The tiny supervised baseline on the decision lists in ``labels``; returns its ``best/``
    checkpoint."""
    from editorbot.models.supervised import SupervisedConfig
    from editorbot.training.supervised_data import load_examples, split_by_track
    from editorbot.training.supervised_train import SupervisedTrainConfig, fit

    model_cfg = SupervisedConfig.tiny()
    train_cfg = SupervisedTrainConfig(
        epochs=s.sup_epochs,
        steps_per_epoch=s.sup_steps,
        val_crops=4,
        lr=s.sup_lr,
        checkpoint_every=s.sup_epochs,
        seed=s.seed,
    )
    examples = load_examples(data_dir, model_cfg, labels_dir=labels)
    train, val = split_by_track(examples, val_fraction=train_cfg.val_fraction, seed=s.seed)
    fit(train, val, model_cfg=model_cfg, train_cfg=train_cfg, save_dir=save_dir)
    return save_dir / "best"


def evaluate(test_dir: Path, labels: Path, checkpoints: list[Path], out: Path) -> dict[str, Any]:
    """Edit the held-out tracks with each checkpoint and score them (``editorbot evaluate``)."""
    from editorbot.evaluation.report import evaluate as _evaluate

    return _evaluate(test_dir, checkpoints, out_dir=out, labels_dir=labels)
