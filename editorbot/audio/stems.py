"""Stem separation with HTDemucs, from local weights only, cached by audio content.

Hybrid Transformer Demucs (Rouard, Massa & Défossez 2023, https://arxiv.org/abs/2211.08553)
splits a track into ``drums``, ``bass``, ``other`` and ``vocals``. Separation runs on the
original audio (its own rate and channels, resampled to the model's rate); the stems are then
returned as mono signals at the analysis rate, the same length as
:func:`editorbot.audio.io.analysis_signal`, ready for
:func:`editorbot.audio.features.beat_features`.

Weights are never downloaded at run time. They come from a folder given by argument or by the
``EDITORBOT_DEMUCS_DIR`` environment variable (demucs's own layout: ``htdemucs.yaml`` plus the
``.th`` files it names), or from one ``.th`` file.

Stems are cached as ``.npz`` (no pickle) under a key made of the audio's content hash and the
model's signature (a hash of its class, arguments and weights), written atomically.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from editorbot.atomic import atomic_path
from editorbot.audio.features import STEM_NAMES
from editorbot.audio.io import Audio, AudioConfig, resample, to_mono
from editorbot.errors import CheckpointError

if TYPE_CHECKING:
    from demucs.apply import BagOfModels, Model

    Separator = BagOfModels | Model
else:
    Separator = Any

logger = logging.getLogger(__name__)

DEMUCS_DIR_ENV = "EDITORBOT_DEMUCS_DIR"
"""Environment variable naming the folder with the demucs weights."""
DEFAULT_MODEL = "htdemucs"
_HOW_TO_GET = (
    "put the demucs weights there: htdemucs.yaml and 955717e8-8726e21a.th from "
    "https://dl.fbaipublicfiles.com/demucs/hybrid_transformer/ (or a single .th model file), "
    f"and pass the folder with --demucs-dir or {DEMUCS_DIR_ENV}"
)


def load_separator(weights: str | Path | None = None, *, name: str = DEFAULT_MODEL) -> Separator:
    """The demucs model, from local files only.

    Args:
        weights: a folder holding ``<name>.yaml`` and/or ``<signature>.th`` files, or one
            ``.th`` file; ``None`` reads the folder from ``EDITORBOT_DEMUCS_DIR``.
        name: the model (bag) name or signature inside the folder.

    Returns:
        The model in eval mode (``.sources``, ``.samplerate``, ``.audio_channels``).

    Raises:
        CheckpointError: no folder given, the folder or model is missing, or it lacks a stem.
    """
    from demucs.pretrained import ModelLoadingError
    from demucs.repo import AnyModelRepo, BagOnlyRepo

    path = _weights_path(weights)
    try:  # a local repo only: nothing is ever downloaded
        if path.is_file():
            model = _load_package(path)
        else:
            models = _SafeLocalRepo(path)
            model = AnyModelRepo(models, BagOnlyRepo(path, models)).get_model(name)
    except CheckpointError:
        raise
    except (ModelLoadingError, OSError, KeyError, RuntimeError, TypeError, ValueError) as e:
        raise CheckpointError(
            f"{path}: cannot load demucs model {name!r} ({e}); {_HOW_TO_GET}"
        ) from e
    missing = [s for s in STEM_NAMES if s not in model.sources]
    if missing:
        raise CheckpointError(
            f"{path}: demucs model {name!r} separates {list(model.sources)}, missing {missing}; "
            "use a 4-stem model such as htdemucs"
        )
    return model.eval()


def _demucs_classes() -> list[Any]:
    """What a demucs model package may name besides tensors and plain containers: the model
    classes (building one runs no code of the file's choosing) and ``Fraction`` (segments)."""
    import fractions

    from demucs.demucs import Demucs
    from demucs.hdemucs import HDemucs
    from demucs.htdemucs import HTDemucs

    return [Demucs, HDemucs, HTDemucs, fractions.Fraction]


def _load_package(path: Path) -> Any:
    """A demucs ``.th`` package read with ``torch.load(weights_only=True)``.

    demucs's own loader unpickles with ``weights_only=False``, so a planted ``.th`` file could
    run code; here only tensors, plain containers and the allow-listed model classes load.

    Raises:
        CheckpointError: the file holds anything else, or is not a demucs package.
    """
    from demucs.states import load_model

    try:
        with torch.serialization.safe_globals(_demucs_classes()):
            package = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(
            f"{path}: not a plain demucs weights file ({type(e).__name__}: {e}); {_HOW_TO_GET}"
        ) from e
    if not isinstance(package, dict) or package.get("klass") not in _demucs_classes()[:3]:
        raise CheckpointError(f"{path}: not a demucs model package; {_HOW_TO_GET}")
    return load_model(package)


def _safe_local_repo() -> type:
    from demucs.repo import LocalRepo, check_checksum

    class SafeLocalRepo(LocalRepo):
        """demucs's folder repo, reading each ``.th`` with :func:`_load_package`."""

        def get_model(self, sig: str) -> Any:
            from demucs.pretrained import ModelLoadingError

            if sig not in self._models:
                raise ModelLoadingError(f"no model with signature {sig} in {self.root}")
            if sig in self._checksums:  # the sha256 prefix in NAME-CHECKSUM.th
                check_checksum(self._models[sig], self._checksums[sig])
            return _load_package(self._models[sig])

    return SafeLocalRepo


def _SafeLocalRepo(root: Path) -> Any:
    return _safe_local_repo()(root)


def _weights_path(weights: str | Path | None) -> Path:
    if weights is None:
        env = os.environ.get(DEMUCS_DIR_ENV)
        if not env:
            raise CheckpointError(f"no demucs weights folder given (stems on); {_HOW_TO_GET}")
        weights = env
    path = Path(weights).expanduser()
    if not path.exists():
        raise CheckpointError(f"{path}: demucs weights folder not found; {_HOW_TO_GET}")
    return path


def model_signature(model: Separator) -> str:
    """A hash of the model's class, sources, rate and weights: part of the stem cache key."""
    return _signature(model)


@functools.lru_cache(maxsize=4)  # modules hash by identity; hashing 80 MB of weights takes ~0.1 s
def _signature(model: Separator) -> str:
    digest = hashlib.sha256()
    digest.update(f"{type(model).__name__}|{list(model.sources)}|{model.samplerate}".encode())
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def audio_hash(audio: Audio) -> str:
    """A hash of the samples and rate (not the path or mtime)."""
    digest = hashlib.sha256(f"{audio.sr}|{audio.y.shape}".encode())
    digest.update(np.ascontiguousarray(audio.y).tobytes())
    return digest.hexdigest()[:24]


def separate_stems(
    audio: Audio,
    *,
    model: Separator,
    config: AudioConfig | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Split ``audio`` into mono stems at the analysis rate.

    Args:
        audio: the original track (any rate and channels).
        model: from :func:`load_separator`.
        config: gives the analysis rate; defaults to ``AudioConfig()``.
        cache_dir: where stems are cached (``None``: no cache).
        progress: show demucs's progress bar.

    Returns:
        ``{'drums', 'bass', 'other', 'vocals'}`` -> [shape=(L,)] float32 at
        ``config.analysis_sr``, L the length of :func:`editorbot.audio.io.analysis_signal`.
    """
    config = config or AudioConfig()
    n_out = math.ceil(audio.n_samples * config.analysis_sr / audio.sr)
    cache = None
    if cache_dir is not None:
        key = f"{audio_hash(audio)}-{model_signature(model)}-{config.analysis_sr}"
        cache = Path(cache_dir) / f"{key}.npz"
        cached = _read_cache(cache, n_out)
        if cached is not None:
            return cached
    sources = _separate(audio, model=model, progress=progress)  # (S, C, L) at model rate
    stems = _to_stems(sources, list(model.sources), orig_sr=model.samplerate, config=config)
    stems = {k: _fit_length(v, n_out) for k, v in stems.items()}
    if cache is not None:
        with atomic_path(cache) as tmp:
            np.savez(tmp, **stems)  # type: ignore[arg-type]
        logger.debug("cached stems of %s in %s", audio.name(), cache)
    return stems


def _separate(audio: Audio, *, model: Separator, progress: bool) -> torch.Tensor:
    """demucs.apply.apply_model on the track at the model's rate and channel count."""
    from demucs.apply import apply_model

    C, L = audio.y.shape
    y = resample(audio.y, orig_sr=audio.sr, target_sr=model.samplerate)
    if model.audio_channels != C:  # mono or surround: a mono downmix on every channel
        y = np.repeat(to_mono(y)[None], model.audio_channels, axis=0)
    wav = torch.from_numpy(np.ascontiguousarray(y))
    # as demucs.separate: normalise by the mono mix's statistics, undo afterwards
    ref = wav.mean(dim=0)
    mean, std = ref.mean(), ref.std().clamp_min(1e-8)
    with torch.inference_mode():
        out = apply_model(model, ((wav - mean) / std)[None], progress=progress, device="cpu")
    return out[0] * std + mean


def _to_stems(
    sources: torch.Tensor, names: list[str], *, orig_sr: int, config: AudioConfig
) -> dict[str, np.ndarray]:
    """Mono stems at the analysis rate; extra sources (guitar, piano) join ``other``."""
    mono = sources.mean(dim=1).numpy()  # (S, L)
    stems = {name: mono[names.index(name)] for name in STEM_NAMES}
    extra = [i for i, n in enumerate(names) if n not in STEM_NAMES]
    if extra:
        stems["other"] = stems["other"] + mono[extra].sum(axis=0)
    return {
        k: resample(v, orig_sr=orig_sr, target_sr=config.analysis_sr).astype(np.float32)
        for k, v in stems.items()
    }


def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    return y[:n] if y.shape[0] >= n else np.pad(y, (0, n - y.shape[0]))


def _read_cache(path: Path, n_out: int) -> dict[str, np.ndarray] | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            stems = {k: data[k].astype(np.float32) for k in STEM_NAMES}
    except (OSError, KeyError, ValueError) as e:
        logger.warning("%s: unreadable stem cache (%s); separating again", path, e)
        return None
    if any(v.shape != (n_out,) for v in stems.values()):
        logger.warning("%s: stem cache of the wrong length; separating again", path)
        return None
    return stems
