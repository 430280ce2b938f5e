"""``editorbot train supervised``: the supervised baseline, from (raw, edit) pairs to ``best/``.

Loads every (raw, edit) pair under ``--data-dir`` with its decision list, aligns targets through
the renderer, holds out whole tracks for validation, and trains with Ray Train inside Ray Tune
(:mod:`editorbot.training.supervised_train`). Its sibling is ``editorbot train rl``
(:mod:`editorbot.training.rl_train`); the seed's ``python -m editorbot.supervised_trainer`` runs
this module with the same flags.

How to run::

    editorbot demo-data --out training_data --tracks 8 --seed 0
    editorbot train supervised --data-dir training_data \\
        --save-dir models/supervised --epochs 100 --batch-size 8 [--tiny]

What to expect: ``SAVE_DIR/best/`` (the checkpoint ``editorbot edit`` loads),
``SAVE_DIR/tensorboard/`` (``tensorboard --logdir SAVE_DIR/tensorboard``), Ray's results under
``SAVE_DIR/ray_results/``; the best validation loss is printed at the end.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from editorbot.errors import ParameterError
from editorbot.storage import as_location, check_writable, join, local_copy

logger = logging.getLogger(__name__)

NAME = "supervised"
HELP = "train the supervised baseline (EditEncoder + MelDecoder) with Ray Train inside Ray Tune"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The trainer's flags (also those of ``python -m editorbot.supervised_trainer``)."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("training_data"),
        help="folder with input/ and desired_output/ (default: %(default)s)",
    )
    parser.add_argument(
        "--labels",
        type=Path,
        default=None,
        help="decision lists from `editorbot labels` (default: DATA_DIR/truth)",
    )
    parser.add_argument(
        "--save-dir",
        type=as_location,
        default=Path("models/supervised"),
        help="folder or storage URI (s3://BUCKET/run) for best/, tensorboard/ and ray_results/ "
        "(default: %(default)s)",
    )
    parser.add_argument("--tiny", action="store_true", help="the tiny test configuration")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="YAML with 'model:' (SupervisedConfig) and 'train:' (SupervisedTrainConfig) "
        "sections; flags given on the command line win over it",
    )
    for flag, help_ in _INT_FLAGS.items():
        parser.add_argument(flag, type=int, default=None, help=help_)
    parser.add_argument(
        "--gpu", action="store_true", default=None, help="one GPU per Ray Train worker"
    )


_INT_FLAGS = {
    "--epochs": "most epochs (default 100)",
    "--batch-size": "crops per optimiser step per worker (default 8)",
    "--steps-per-epoch": "optimiser steps per epoch (default 50)",
    "--patience": "early stop after this many epochs without a better val/total_loss (default 10)",
    "--checkpoint-every": "epochs between Ray Train checkpoints (default 5)",
    "--num-workers": "Ray Train workers (default 1)",
    "--seed": "split, crops and initialisation (default 0)",
    "--label-tracks": "whole tracks per step for the beat label head (default 4)",
}


def run(args: argparse.Namespace) -> int:
    """Load the data, train, and print where the best checkpoint is."""
    import json

    from editorbot.models.supervised import CHECKPOINT_JSON
    from editorbot.training.local_ray import local_ray
    from editorbot.training.supervised_data import load_examples, split_by_track
    from editorbot.training.supervised_train import METRIC, fit

    _check(args)
    check_writable(args.save_dir)  # an unusable location stops here, before Ray
    model_cfg, train_cfg = _configs(args)
    examples = load_examples(args.data_dir, model_cfg, labels_dir=args.labels)
    train, val = split_by_track(examples, val_fraction=train_cfg.val_fraction, seed=train_cfg.seed)
    logger.info("%d training tracks, %d validation tracks", len(train), len(val))
    with local_ray():
        metrics = fit(train, val, model_cfg=model_cfg, train_cfg=train_cfg, save_dir=args.save_dir)
    best_dir = join(args.save_dir, "best")
    best = json.loads((local_copy(best_dir, require=CHECKPOINT_JSON) / CHECKPOINT_JSON).read_text())
    print(
        f"best checkpoint: {best_dir} ({METRIC} {best[METRIC]:.4f} at epoch "
        f"{best['epoch']}; stopped after epoch {metrics.get('epoch', '?')})"
    )
    return 0


_TRAIN_FLAGS = {
    "epochs": "epochs",
    "batch_size": "batch_size",
    "steps_per_epoch": "steps_per_epoch",
    "patience": "patience",
    "checkpoint_every": "checkpoint_every",
    "num_workers": "num_workers",
    "gpu": "use_gpu",
    "seed": "seed",
    "label_tracks": "label_tracks",
}
"""Flag (argparse dest) -> SupervisedTrainConfig field."""


def _configs(args: argparse.Namespace) -> tuple[Any, Any]:
    """Model and training configs: defaults (or tiny), then the YAML, then the flags given."""
    import dataclasses

    from editorbot.config import from_dict, load_yaml
    from editorbot.models.supervised import SupervisedConfig
    from editorbot.training.supervised_train import SupervisedTrainConfig

    sections = load_yaml(args.config) if args.config else {}
    source = str(args.config or "flags")
    base = SupervisedConfig.tiny() if args.tiny else SupervisedConfig()
    model = {**dataclasses.asdict(base), **(sections.get("model") or {})}
    flags = {f: getattr(args, a) for a, f in _TRAIN_FLAGS.items() if getattr(args, a) is not None}
    train = {**(sections.get("train") or {}), **flags}
    return (
        from_dict(SupervisedConfig, model, source=source),
        from_dict(SupervisedTrainConfig, train, source=source),
    )


def _check(args: argparse.Namespace) -> None:
    for flag in _TRAIN_FLAGS:
        value = getattr(args, flag)
        if flag not in ("gpu", "seed") and value is not None and value < 1:
            raise ParameterError(f"--{flag.replace('_', '-')} must be at least 1, got {value}")
    if not args.data_dir.is_dir():
        raise ParameterError(
            f"{args.data_dir}: no such folder; pass --data-dir (see `editorbot demo-data`)"
        )
