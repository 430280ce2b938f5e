"""TensorBoard for both trainers, and which learner results are loss terms.

One writer per log folder for the life of the process (``train rl`` appends a row per
iteration; the supervised loop a row per epoch), and one definition of a loss key: the PPO
terms RLlib reports (``policy_loss``, ``vf_loss``, ``entropy``, ``mean_kl_loss`` ...) and the
behavioural-cloning and auxiliary terms :mod:`editorbot.training.learner` adds (``bc_*``,
``aux_*``). ``progress.jsonl``, the TensorBoard logs and the Tune metrics all keep these.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

LOSS_KEY_PARTS = ("loss", "entropy", "kl", "bc_", "aux_")
"""A learner result whose key contains one of these is a loss term (or a term's statistic)."""

_WRITERS: dict[Path, Any] = {}


def is_loss_key(key: str) -> bool:
    """Whether learner result ``key`` is one of the loss terms (:data:`LOSS_KEY_PARTS`)."""
    return any(part in key for part in LOSS_KEY_PARTS)


def writer(folder: Path) -> Any:
    """The ``SummaryWriter`` of ``folder``, created on first use and kept for the process."""
    folder = Path(folder)
    if folder not in _WRITERS:
        from torch.utils.tensorboard import SummaryWriter

        _WRITERS[folder] = SummaryWriter(log_dir=str(folder))
    return _WRITERS[folder]
