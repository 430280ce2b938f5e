"""Apply a trained RL editor to a track without Ray: features → policy → renderer.

The checkpoint folder (``SAVE_DIR/best/``) describes itself::

    editorbot_checkpoint.json   {"kind": "rl", "version", "env_config", "module_config",
                                 "target_ratio", "validation", ...}
    normalizer.json             feature normalisation fitted on the training set
    rl_module/                  the RLModule in RLlib's format, plus policy_net.json and
                                policy_net.pt: the policy network alone, which is what is loaded
                                here (plain PyTorch, ``torch.load(weights_only=True)``; no Ray)

A checkpoint without ``policy_net.pt`` is refused: RLlib's own module files are pickles, and
unpickling a supplied file can run arbitrary code.

How to run: ``editorbot edit input.wav --checkpoint models/rl_model/best --output edited.wav``.

What to expect: the edited audio and ``edited.decisions.json`` beside it; deterministic (the most
likely action at each step) unless ``sample=True``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from editorbot import __version__
from editorbot.envs import spaces as sp
from editorbot.envs.editing_env import N_GLOBALS, EditingEnv
from editorbot.envs.track_table import (
    NORMALIZER_FILE,
    FeatureNormalizer,
    TrackTable,
    table_from_analysis,
)
from editorbot.errors import CheckpointError

if TYPE_CHECKING:
    from editorbot.models.policy_net import EditPolicyNet

logger = logging.getLogger(__name__)

CHECKPOINT_JSON = "editorbot_checkpoint.json"
MODULE_DIR = "rl_module"
KIND = "rl"


def read_checkpoint_meta(checkpoint: str | Path) -> dict[str, Any]:
    """``editorbot_checkpoint.json`` of a checkpoint folder.

    Raises:
        CheckpointError: missing or unreadable.
    """
    from editorbot.safe_load import read_json_object

    path = Path(checkpoint) / CHECKPOINT_JSON
    if not path.is_file():
        raise CheckpointError(
            f"{path}: missing checkpoint description; pass a folder written by `editorbot "
            "train` (e.g. SAVE_DIR/best)"
        )
    meta = read_json_object(path)
    if not isinstance(meta.get("env_config", {}), dict):
        raise CheckpointError(f"{path}: field 'env_config' is not an object")
    return meta


def check_compatible(checkpoint: Path, meta: dict[str, Any]) -> None:
    """Refuse a checkpoint whose policy saw other features, or from another editorbot release.

    A policy fed features from another feature version would act on garbage without any error;
    the normaliser and module layout may also differ between releases (major.minor).

    Raises:
        CheckpointError: naming both versions and the fix (retrain, or use that release).
    """
    from editorbot.audio.features import FEATURE_VERSION

    theirs = meta.get("feature_version")
    if theirs != FEATURE_VERSION:
        raise CheckpointError(
            f"{checkpoint}: trained on feature version {theirs!r}, this editorbot computes "
            f"{FEATURE_VERSION!r}; retrain the model (or use the editorbot release that wrote it)"
        )
    release = str(meta.get("version", "?"))
    if release.split(".")[:2] != __version__.split(".")[:2]:
        raise CheckpointError(
            f"{checkpoint}: written by editorbot {release}, this is {__version__}; retrain the "
            "model (or use that release)"
        )


def load_policy(checkpoint: str | Path) -> tuple[EditPolicyNet, FeatureNormalizer, dict[str, Any]]:
    """The policy network, normaliser and description of an RL checkpoint (no Ray).

    Raises:
        CheckpointError: not an RL checkpoint, from another feature version or release, or the
            policy did not load.
    """
    from editorbot.models.policy_net import has_policy_net, load_policy_net

    checkpoint = Path(checkpoint)
    meta = read_checkpoint_meta(checkpoint)
    if meta.get("kind") != KIND:
        raise CheckpointError(f"{checkpoint}: kind {meta.get('kind')!r}, expected {KIND!r}")
    check_compatible(checkpoint, meta)
    folder = checkpoint / MODULE_DIR
    if not has_policy_net(folder):
        # No fallback to RLlib's RLModule.from_checkpoint: it unpickles (cloudpickle) files a
        # supplied checkpoint controls, which runs whatever code they hold.
        raise CheckpointError(
            f"{folder}: no policy_net.json + policy_net.pt (an older checkpoint, readable only "
            "through pickle, which can run code); retrain it with this editorbot"
        )
    net = load_policy_net(folder)
    return net, FeatureNormalizer.load(checkpoint / NORMALIZER_FILE), meta


def as_policy_net(policy: Any) -> EditPolicyNet:
    """``policy`` itself if it is an :class:`EditPolicyNet`, else the one an ``EditorRLModule``
    wraps (same weights)."""
    from editorbot.models.policy_net import EditPolicyNet

    net = policy if isinstance(policy, EditPolicyNet) else getattr(policy, "policy_net", None)
    if not isinstance(net, EditPolicyNet):
        raise CheckpointError(f"{type(policy).__name__} is neither EditPolicyNet nor wraps one")
    return net


def run_policy(
    policy: Any, env: EditingEnv, track_index: int, *, sample: bool = False, seed: int = 0
) -> tuple[np.ndarray, dict[str, float]]:
    """One episode of ``policy`` (an :class:`EditPolicyNet` or ``EditorRLModule``) on a track.

    Greedy (argmax type, then size, then amount) unless ``sample``; the policy runs in eval mode
    (restored afterwards) under ``torch.inference_mode``, one observation per step.

    Returns:
        The actions [shape=(k, 3)] and the episode's reward terms.
    """
    import torch

    net = as_policy_net(policy)
    device = next(net.parameters()).device
    keys = sp.POLICY_KEYS
    torch.manual_seed(seed)
    obs, _ = env.reset(seed=seed, options={"track_index": track_index})
    actions: list[np.ndarray] = []
    done, info = False, dict[str, Any]()
    # Each submodule's own flag, restored after: an RLModule's parts may be mid-training.
    modes = [(m, m.training) for m in net.modules()]
    net.eval()
    try:
        with torch.inference_mode():
            while not done:
                batch = {k: torch.from_numpy(obs[k][None]).to(device) for k in keys}
                action = net.act(batch, sample=sample)[0].cpu().numpy()
                obs, _, terminated, truncated, info = env.step(action)
                actions.append(action)
                done = terminated or truncated
    finally:
        for m, training in modes:
            m.training = training
    return np.asarray(actions, np.int64).reshape(-1, 3), dict(info["episode_terms"])


def validation_metrics(
    module: Any, tables: list[TrackTable], env_config: dict[str, Any]
) -> dict[str, float]:
    """The greedy policy on ``tables``: mean per-beat type agreement with the expert, and the
    largest share of one action type among its actions (> 0.9 = action-type collapse)."""
    from editorbot.editing.actions import N_TYPES

    env = EditingEnv({**env_config, "tables": tables})
    w_type = env.config.reward.w_type
    scores, counts = [], np.zeros(N_TYPES)
    for i in range(len(tables)):
        actions, terms = run_policy(module, env, i)
        scores.append(terms["agree_type"] / w_type)
        counts += np.bincount(actions[:, 0], minlength=N_TYPES)
    top = float(counts.max() / max(counts.sum(), 1))
    return {"type_agreement": float(np.mean(scores)), "max_type_share": top,
            "type_collapse": float(top > 0.9)}  # fmt: skip


def edit_track(
    audio_path: str | Path,
    *,
    checkpoint: str | Path,
    output: str | Path,
    sample: bool = False,
    seed: int = 0,
    target_duration_sec: float | None = None,
    tolerance_sec: float | None = None,
    exact: bool = False,
) -> dict[str, Path]:
    """Edit one track with an RL checkpoint: writes ``output`` and its decision list beside it.

    With ``target_duration_sec`` [s], the most likely edit whose output is within
    ``tolerance_sec`` (default one bar) of it; ``exact`` then stretches it (<= 3 %) to the
    sample. The decision list's meta records the target and the achieved length.

    Returns:
        ``{"audio": output, "decisions": OUTPUT_STEM.decisions.json}``.
    """
    from editorbot.editing.decisions import decisions_from_actions

    net, env, audio, grid = policy_on_track(checkpoint, audio_path)
    fit: dict[str, Any] = {}
    if target_duration_sec is None:
        actions, _ = run_policy(net, env, 0, sample=sample, seed=seed)
    else:
        actions, fit = _fit(net, env, grid, audio, target_duration_sec, tolerance_sec, exact,
                            sample)  # fmt: skip
    dl = decisions_from_actions(
        actions,
        n_beats=grid.n_beats,
        sample_rate=audio.sr,
        beat_times=grid.beat_times,
        downbeat_phase=grid.downbeat_phase,
        meta={"checkpoint": str(checkpoint), "editorbot": __version__, "sample": sample, **fit},
    )
    output = Path(output)
    write_edit(audio, dl, output, protect=(audio_path,))
    decisions = dl.save(output.with_suffix(".decisions.json"))
    return {"audio": output, "decisions": decisions}


def write_edit(audio: Any, dl: Any, output: Path, *, protect: tuple[str | Path, ...]) -> None:
    """Render ``dl`` on ``audio`` into ``output``: streamed block by block to the file, except
    with an exact target (``dl.meta["exact"]``), whose time stretch takes the whole render in
    memory; records the achieved length in ``dl.meta`` when it holds a target."""
    from editorbot.audio.io import write_audio
    from editorbot.editing.render import render_decision_list, render_to_file
    from editorbot.target_duration import finish_render

    if dl.meta.get("exact"):
        result = render_decision_list(audio, dl)
        write_audio(output, finish_render(result.y, result.sr, dl.meta), sr=result.sr,
                    protect=protect)  # fmt: skip
        return
    done = render_to_file(audio, dl, output, protect=protect)
    if "target_duration_sec" in dl.meta:
        dl.meta["achieved_duration_sec"] = done.n_samples / done.sr


def policy_on_track(
    checkpoint: str | Path, audio_path: str | Path
) -> tuple[EditPolicyNet, EditingEnv, Any, Any]:
    """What ``edit`` decodes with: (the policy, its env on the track, the audio, the grid).

    Raises:
        CheckpointError: the checkpoint does not load or does not fit this editorbot's inputs.
        AudioLoadError: the audio cannot be used.
    """
    from editorbot.audio.analysis import analyze
    from editorbot.audio.io import open_audio

    net, normalizer, meta = load_policy(checkpoint)
    audio = open_audio(audio_path)  # a WAV/FLAC stays on disk, read a block at a time
    analysis = analyze(audio)
    # The target is a constraint on the decoding (target_duration), not an observation: the
    # policy sees what it sees without one, so a free constraint gives the unconstrained edit.
    ratio = meta.get("target_ratio", 1.0)
    table = table_from_analysis(Path(audio_path).stem, analysis, normalizer, target_ratio=ratio)
    env = EditingEnv({**meta["env_config"], "tables": [table]})
    _check_fits(net, env, checkpoint)
    return net, env, audio, analysis.grid


def _fit(
    net: EditPolicyNet,
    env: EditingEnv,
    grid: Any,
    audio: Any,
    target_sec: float,
    tolerance_sec: float | None,
    exact: bool,
    sample: bool,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The greedy edit fitted to the target (:mod:`editorbot.target_duration`)."""
    from editorbot.errors import ParameterError
    from editorbot.target_duration import Grid, TargetSpec, fit_policy

    if sample:
        raise ParameterError("--sample does not combine with a target duration (greedy only)")
    g = Grid.of(grid.beat_times, sr=audio.sr, n_samples=audio.n_samples,
                phase=grid.downbeat_phase)  # fmt: skip
    spec = TargetSpec(target_sec, tolerance_sec, exact)
    return fit_policy(net, env, g, spec, name=str(audio.name()))


def _check_fits(net: EditPolicyNet, env: EditingEnv, checkpoint: str | Path) -> None:
    """Refuse a policy whose input size differs from the observations this editorbot builds.

    Raises:
        CheckpointError: naming both token shapes.
    """
    enc = net.encoder_config
    theirs = (enc.window, enc.n_token_features, enc.n_globals)
    ours = (env.config.window, env.n_token_features, N_GLOBALS)
    if theirs != ours:
        raise CheckpointError(
            f"{checkpoint}: the policy takes (window, token features, globals) = {theirs}, this "
            f"editorbot builds {ours}; retrain the model (or use the editorbot release that "
            "wrote it)"
        )
