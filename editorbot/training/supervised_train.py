"""Train the supervised baseline with Ray Train (``TorchTrainer``) inside Ray Tune.

One Tune trial is a function trainable that builds and fits a ``TorchTrainer`` and forwards its
reports with ``TuneReportCallback`` (Ray 2.60 runs Train V2, where ``tune.Tuner(TorchTrainer)``
is rejected). The trial asks for almost no CPU; the Train workers hold
the real resources, so the same code runs on one CPU worker or on N GPU workers.

Each step: random crops of the training tracks for the reconstruction losses, plus
``label_tracks`` whole training tracks for the beat label head (it needs the song around a beat:
where it sits, how loud it is against the rest). Each epoch: a validation pass on fixed crops and
every whole held-out track, TensorBoard scalars (``train/l1_loss``, ``train/msstft_loss``,
``train/edit_consistency_loss``, ``train/label_loss``, ``val/total_loss``,
``val/type_accuracy`` — the beat head's per-beat type accuracy) and a spectrogram image
of a validation example, a Ray Train checkpoint every ``checkpoint_every`` epochs, and
``SAVE_DIR/best/`` rewritten whenever the validation loss improves. Training stops early after
``patience`` epochs without improvement.

How to run: ``editorbot train supervised --data-dir training_data --save-dir models/supervised``.
What to expect: ``SAVE_DIR/best/editorbot_checkpoint.json`` + weights, ``SAVE_DIR/tensorboard``,
and Ray's trial results under ``SAVE_DIR/ray_results``.

``SAVE_DIR`` may be a storage URI (``s3://BUCKET/run``; :mod:`editorbot.storage`): the rank-0
Train worker, on whatever node it runs, then writes ``best/`` in a local folder and uploads it
(description last), and Ray Train writes its results there too; the driver reads ``best/`` back
from the location, never from a folder of the worker's node.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from editorbot import storage
from editorbot.config import from_dict
from editorbot.errors import EditorbotError, ParameterError
from editorbot.models.losses import SupervisedLoss, class_weights_from_counts
from editorbot.models.supervised import (
    CHECKPOINT_JSON,
    SupervisedConfig,
    SupervisedEditModel,
    save_checkpoint,
)
from editorbot.training import tensorboard
from editorbot.training.supervised_data import (
    CropDataset,
    TrackExample,
    beat_tracks,
    label_counts,
    pad_beat_labels,
)

logger = logging.getLogger(__name__)

METRIC = "val/total_loss"


@dataclass(frozen=True)
class SupervisedTrainConfig:
    """How the supervised baseline is trained (the model itself is a ``SupervisedConfig``)."""

    epochs: int = 100
    """[epochs] most epochs to run."""
    batch_size: int = 8
    """[crops] crops per optimiser step, per worker."""
    steps_per_epoch: int = 50
    """[steps] optimiser steps per epoch (crops are random, so an epoch is a budget)."""
    val_crops: int = 16
    """[crops] fixed validation crops from the held-out tracks."""
    lr: float = 3e-4
    """[1] AdamW learning rate."""
    weight_decay: float = 0.01
    """[1] AdamW weight decay."""
    grad_clip: float = 1.0
    """[L2 norm] gradient clipping threshold."""
    val_fraction: float = 0.2
    """[fraction] of tracks held out for validation (at least one)."""
    checkpoint_every: int = 5
    """[epochs] interval of Ray Train checkpoints."""
    patience: int = 10
    """[epochs] early stopping: epochs without a better val/total_loss."""
    num_workers: int = 1
    """[workers] Ray Train workers (one per GPU with use_gpu)."""
    use_gpu: bool = False
    """[bool] put each worker on a GPU."""
    seed: int = 0
    """[seed] crops, split and initialisation."""
    label_tracks: int = 4
    """[tracks] whole tracks per optimiser step for the beat label head (per worker)."""


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """The Ray Train loop (runs in every worker). ``config`` holds plain data and object refs."""
    import ray
    import ray.train
    import ray.train.torch

    tc = from_dict(SupervisedTrainConfig, config["train"], source="train config")
    torch.manual_seed(tc.seed)
    model, loss_fn, train_ds, train_dl, val_dl, tracks = _setup(config, tc)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    rank = ray.train.get_context().get_world_rank()
    location = config["save_dir"]
    # Through a URI this node writes locally and uploads; a path is written in place.
    remote = storage.is_uri(location)
    save_dir = Path(tempfile.mkdtemp(prefix="editorbot_sup_")) if remote else Path(location)
    writer = tensorboard.writer(save_dir / "tensorboard") if rank == 0 else None
    best, since_best = math.inf, 0
    for epoch in range(tc.epochs):
        train_ds.epoch = epoch
        set_epoch = getattr(getattr(train_dl, "sampler", None), "set_epoch", None)
        if set_epoch is not None:  # DistributedSampler with several workers
            set_epoch(epoch)
        picker = _TrackPicker(tracks["train"], tc.label_tracks, seed=(tc.seed, epoch, rank))
        metrics = _train_epoch(model, loss_fn, opt, train_dl, tc.grad_clip, picker)
        val, example, val_acc = _validate(model, loss_fn, val_dl, tracks["val"])
        metrics["val/type_accuracy"] = val_acc
        val = _mean_across_workers(val)  # every rank must take the same early-stop decision
        metrics.update({METRIC: val, "epoch": epoch + 1})
        improved = val < best
        best, since_best = (val, 0) if improved else (best, since_best + 1)
        if writer is not None:
            _log_tensorboard(writer, metrics, example, epoch)
        if rank == 0 and improved:
            _unwrap(model).eval()
            save_checkpoint(
                save_dir / "best", _unwrap(model), extra={"epoch": epoch + 1, METRIC: val}
            )
            if remote:
                storage.upload_dir(
                    save_dir / "best", storage.join(location, "best"), last=CHECKPOINT_JSON
                )
        _report(model, metrics, epoch, tc, rank)
        if since_best >= tc.patience:
            logger.info(
                "early stop at epoch %d: no better %s for %d epochs", epoch + 1, METRIC, tc.patience
            )
            break
    if writer is not None:
        writer.close()
        if remote:
            storage.upload_dir(save_dir / "tensorboard", storage.join(location, "tensorboard"))


def _setup(config: dict[str, Any], tc: SupervisedTrainConfig) -> tuple[Any, ...]:
    """Model (wrapped for DDP), loss, and the crop loaders (sharded across workers)."""
    import ray
    import ray.train.torch

    cfg = from_dict(SupervisedConfig, config["model"], source="model config")
    train_ex, val_ex = ray.get(config["train_ref"]), ray.get(config["val_ref"])
    model = ray.train.torch.prepare_model(SupervisedEditModel(cfg))
    weights = class_weights_from_counts(label_counts(train_ex), power=cfg.class_weight_power)
    device = ray.train.torch.get_device()
    loss_fn = SupervisedLoss(cfg, class_weights=weights).to(device)
    tracks = {"train": beat_tracks(train_ex, device), "val": beat_tracks(val_ex, device)}
    n_train = tc.steps_per_epoch * tc.batch_size
    train_ds = CropDataset(train_ex, crop_frames=cfg.crop_frames, n_crops=n_train, seed=tc.seed)
    val_ds = CropDataset(
        val_ex, crop_frames=cfg.crop_frames, n_crops=tc.val_crops, seed=tc.seed + 1
    )
    DataLoader = torch.utils.data.DataLoader
    train_dl = ray.train.torch.prepare_data_loader(
        DataLoader(train_ds, batch_size=tc.batch_size, shuffle=True)
    )
    val_dl = ray.train.torch.prepare_data_loader(DataLoader(val_ds, batch_size=tc.batch_size))
    return model, loss_fn, train_ds, train_dl, val_dl, tracks


class _TrackPicker:
    """Whole tracks (BeatTrack, beat labels) for the beat head: ``n`` at random per step."""

    def __init__(self, tracks: list[tuple[Any, torch.Tensor]], n: int, *, seed: tuple) -> None:
        import numpy as np

        self._tracks, self._n = tracks, min(n, len(tracks))
        self._rng = np.random.default_rng(seed)

    def __call__(self) -> list[tuple[Any, torch.Tensor]]:
        idx = self._rng.choice(len(self._tracks), size=self._n, replace=False)
        return [self._tracks[i] for i in idx]


def _mean_across_workers(value: float) -> float:
    import ray.train.torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=ray.train.torch.get_device())
    dist.all_reduce(t)  # on the worker's device: NCCL needs a GPU tensor, gloo a CPU one
    return float(t.item()) / dist.get_world_size()


def _unwrap(model: torch.nn.Module) -> SupervisedEditModel:
    inner = getattr(model, "module", model)
    assert isinstance(inner, SupervisedEditModel)
    return inner


def _forward_loss(
    model: torch.nn.Module,
    loss_fn: SupervisedLoss,
    batch: dict[str, torch.Tensor],
    tracks: list[tuple[Any, torch.Tensor]],
) -> tuple[Any, Any, torch.Tensor]:
    """One forward of crops (reconstruction) and whole tracks (beat head); returns the output,
    the loss terms and the padded (B', 3, W) beat labels."""
    out = model(batch["S_raw"], batch["labels"], [t for t, _ in tracks])
    beat_labels = pad_beat_labels([y for _, y in tracks])
    terms = loss_fn(
        out.S_edit,
        batch["S_raw"],
        batch["S_target"],
        batch["labels"],
        batch["target_mask"],
        out.beat,
        beat_labels,
    )
    return out, terms, beat_labels


def _train_epoch(model, loss_fn, opt, loader, grad_clip: float, picker) -> dict[str, float]:
    model.train()
    sums = {"l1": 0.0, "msstft": 0.0, "edit_consistency": 0.0, "label": 0.0, "total": 0.0}
    n = 0
    for batch in loader:
        _, terms, _ = _forward_loss(model, loss_fn, batch, picker())
        opt.zero_grad(set_to_none=True)
        terms.total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        for k in sums:
            sums[k] += float(getattr(terms, k).detach())
        n += 1
    return {f"train/{k}_loss": v / max(n, 1) for k, v in sums.items()}


@torch.no_grad()
def _validate(model, loss_fn, loader, tracks) -> tuple[float, dict[str, torch.Tensor], float]:
    """Mean total loss (every validation track in the label term), an example, and the beat
    head's per-beat type accuracy on the validation tracks."""
    model.eval()
    total, n, right, beats = 0.0, 0, 0.0, 0.0
    example: dict[str, torch.Tensor] = {}
    for batch in loader:
        out, terms, labels = _forward_loss(model, loss_fn, batch, tracks)
        total, n = total + float(terms.total), n + 1
        hit = (out.beat.type.argmax(-1) == labels[:, 0]) & out.beat.mask
        right, beats = right + float(hit.sum()), beats + float(out.beat.mask.sum())
        if not example:
            example = {
                "S_raw": batch["S_raw"][0],
                "S_target": batch["S_target"][0],
                "S_edit": out.S_edit[0],
            }
    acc = right / max(beats, 1.0)
    return total / max(n, 1), {k: v.cpu() for k, v in example.items()}, acc


def _log_tensorboard(writer: Any, metrics: dict[str, float], example: dict, epoch: int) -> None:
    for key, value in metrics.items():
        if "/" in key:
            writer.add_scalar(key, value, epoch + 1)
    if example:
        writer.add_figure("val/spectrogram", _spectrogram_figure(example), epoch + 1)
    writer.flush()


def _spectrogram_figure(example: dict[str, torch.Tensor]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(8, 6), sharex=True)
    for ax, key in zip(axes, ("S_raw", "S_target", "S_edit"), strict=True):
        ax.imshow(example[key].numpy(), origin="lower", aspect="auto")
        ax.set_ylabel(key)
    axes[-1].set_xlabel("frame")
    return fig


def _report(
    model, metrics: dict[str, float], epoch: int, tc: SupervisedTrainConfig, rank: int
) -> None:
    import ray.train

    if (epoch + 1) % tc.checkpoint_every != 0:
        ray.train.report(metrics)
        return
    with tempfile.TemporaryDirectory() as tmp:
        if rank == 0:
            save_checkpoint(tmp, _unwrap(model), extra={"epoch": epoch + 1, **metrics})
        ckpt = ray.train.Checkpoint.from_directory(tmp) if rank == 0 else None
        ray.train.report(metrics, checkpoint=ckpt, checkpoint_dir_name=f"epoch_{epoch + 1:04d}")


def fit(
    train_examples: list[TrackExample],
    val_examples: list[TrackExample],
    *,
    model_cfg: SupervisedConfig,
    train_cfg: SupervisedTrainConfig,
    save_dir: str | Path,
) -> dict[str, Any]:
    """Run one Tune trial that fits a ``TorchTrainer``; return the trial's last metrics.

    ``save_dir`` is a folder or a storage URI (see the module docstring).

    Ray must already be initialised (the command does it; tests use a local cluster).

    Raises:
        ParameterError: resources the cluster cannot provide.
    """
    import ray
    from ray import tune

    location = save_dir if storage.is_uri(save_dir) else str(Path(save_dir).resolve())
    results, results_fs = storage.ray_storage(storage.join(location, "ray_results"))
    _check_resources(train_cfg)
    logger.info("supervised training: %s %s", model_cfg, train_cfg)
    param_space = {
        "model": dataclasses.asdict(model_cfg),
        "train": dataclasses.asdict(train_cfg),
        "save_dir": location,
    }
    trainable = tune.with_resources(
        tune.with_parameters(
            _trial,
            train_ref=ray.put(train_examples),
            val_ref=ray.put(val_examples),
        ),
        {"CPU": 0.01},
    )
    tuner = tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(metric=METRIC, mode="min", num_samples=1),
        run_config=tune.RunConfig(
            name="supervised", storage_path=results, storage_filesystem=results_fs, verbose=0
        ),
    )
    grid = tuner.fit()
    if grid.errors or not storage.exists(storage.join(location, "best", CHECKPOINT_JSON)):
        first = grid.errors[0] if grid.errors else "no epoch finished"
        raise EditorbotError(
            f"supervised training failed: {str(first).strip().splitlines()[-1]} "
            f"(details under {storage.join(location, 'ray_results')}); see the message and re-run"
        )
    return dict(grid.get_best_result().metrics or {})


def _trial(config: dict[str, Any], train_ref: Any, val_ref: Any) -> None:
    """The Tune function trainable: build and fit the ``TorchTrainer`` for this trial."""
    import ray
    import ray.train
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    tc = from_dict(SupervisedTrainConfig, config["train"], source="train config")
    results, results_fs = storage.ray_storage(storage.join(config["save_dir"], "ray_results"))
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={**config, "train_ref": ray.put(train_ref), "val_ref": ray.put(val_ref)},
        scaling_config=ray.train.ScalingConfig(num_workers=tc.num_workers, use_gpu=tc.use_gpu),
        run_config=ray.train.RunConfig(
            name="train",
            storage_path=results,
            storage_filesystem=results_fs,
            callbacks=[TuneReportCallback()],  # type: ignore[list-item]  # Train V2 UserCallback
            checkpoint_config=ray.train.CheckpointConfig(
                num_to_keep=2, checkpoint_score_attribute=METRIC, checkpoint_score_order="min"
            ),
        ),
    )
    trainer.fit()


def _check_resources(tc: SupervisedTrainConfig) -> None:
    import ray

    have = ray.cluster_resources()
    need_cpu, need_gpu = tc.num_workers * 1.0 + 0.01, tc.num_workers if tc.use_gpu else 0
    if have.get("CPU", 0) < need_cpu or have.get("GPU", 0) < need_gpu:
        raise ParameterError(
            f"--num-workers {tc.num_workers}{' with GPUs' if tc.use_gpu else ''} needs "
            f"{need_cpu:g} CPUs and {need_gpu} GPUs; the Ray cluster has "
            f"{have.get('CPU', 0):g} CPUs and {have.get('GPU', 0):g} GPUs; lower --num-workers"
        )
