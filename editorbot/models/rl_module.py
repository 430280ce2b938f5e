"""``EditorRLModule``: the RL agent's policy, value and auxiliary heads on one NATTEN encoder.

The policy network is :class:`~editorbot.models.policy_net.EditPolicyNet`, a plain ``nn.Module``
(encoder, type head, conditioned heads) that this RLModule wraps and shares: one encoder pass per
batch feeds the three autoregressive policy heads (type; size given type; amount given type and
size), the value head and the auxiliary heads (tempo bin, energy class, phrase boundary). The
conditioned heads are evaluated for every type and every (type, size) at once, so
:class:`~editorbot.models.distribution.AutoregressiveEditDistribution` gets all rows and computes
exact log-probabilities, entropy and KL. Masks from the observation are added to the logits as
``clamp(log(mask), min=FLOAT_MIN)``.

Cross into RLlib with ``RLModuleSpec(module_class=EditorRLModule,
model_config=dataclasses.asdict(ModuleConfig(...)))``; ``setup()`` rebuilds the dataclass.

Saving (``save_to_path``, RLlib's checkpoint format, unchanged) also writes the policy's
``policy_net.json`` + ``policy_net.pt`` into the module's folder, which ``editorbot edit`` loads
with plain PyTorch (:func:`~editorbot.models.policy_net.load_policy_net`), without Ray.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
from typing import Any

import gymnasium as gym
import torch
import torch.nn.functional as F
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI, ValueFunctionAPI
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from ray.rllib.core.rl_module.torch import TorchRLModule

from editorbot.config import from_dict
from editorbot.envs import spaces as obs_keys
from editorbot.errors import ParameterError
from editorbot.models.cursor_encoder import CursorEncoder
from editorbot.models.distribution import AutoregressiveEditDistribution, pack_logits
from editorbot.models.natten_encoder import EncoderConfig
from editorbot.models.policy_net import (
    POLICY_WEIGHTS,
    EditPolicyNet,
    ModuleConfig,
    mlp,
    policy_files,
)

__all__ = ["EditorRLModule", "ModuleConfig", "aux_losses"]

logger = logging.getLogger(__name__)

_RLLIB_MODEL_KEYS = frozenset(f.name for f in dataclasses.fields(DefaultModelConfig))
"""Keys RLlib merges into every ``model_config`` (e.g. PPO's ``vf_share_layers``); ignored."""

AUX_TEMPO_LOGITS = "aux_tempo_logits"
"""``_forward_train`` output: [B, n_tempo_bins] logits of the cursor beat's tempo bin."""
AUX_ENERGY_LOGITS = "aux_energy_logits"
"""``_forward_train`` output: [B, n_energy_classes] logits of the cursor beat's energy class."""
AUX_PHRASE_LOGITS = "aux_phrase_logits"
"""``_forward_train`` output: [B] logit that the cursor beat starts a phrase."""


def _module_config(model_config: Any) -> ModuleConfig:
    """Rebuild :class:`ModuleConfig` from RLlib's ``model_config``, minus RLlib's own keys."""
    if dataclasses.is_dataclass(model_config) and not isinstance(model_config, type):
        model_config = dataclasses.asdict(model_config)
    raw = {k: v for k, v in dict(model_config or {}).items() if k not in _RLLIB_MODEL_KEYS}
    return from_dict(ModuleConfig, raw, source="EditorRLModule model_config")


def _encoder_config(cfg: ModuleConfig, space: Any) -> EncoderConfig:
    if not isinstance(space, gym.spaces.Dict) or set(space.spaces) != set(obs_keys.OBS_KEYS):
        raise ParameterError(
            f"EditorRLModule: observation space {space} is not the editing env's; build it "
            "with editorbot.envs.spaces.observation_space()"
        )
    W, F_tok = space[obs_keys.OBS_TOKENS].shape or ()
    (G,) = space[obs_keys.OBS_GLOBALS].shape or ()
    return cfg.encoder_config(window=W, n_token_features=F_tok, n_globals=G)


_NON_INFERENCE_ATTRIBUTES = (
    "_value_encoder", "_value_head", "_tempo_head", "_energy_head", "_phrase_head",
)  # fmt: skip


class EditorRLModule(TorchRLModule, ValueFunctionAPI, InferenceOnlyAPI):
    """Policy (3 autoregressive heads), value and auxiliary heads over a NATTEN beat encoder.

    Observation keys are those of :mod:`editorbot.envs.spaces`; the action is
    ``MultiDiscrete([20, 5, 5])``. An ``inference_only`` copy (what RLlib builds on env runners)
    holds the encoder and the policy heads only; ``_forward_train`` and ``compute_values`` need
    the full module.

    Shape:
        obs tokens [B, W, F_tok], globals [B, G], masks [B, 20], [B, 20, 5], [B, 20, 5].
        ACTION_DIST_INPUTS [B, 620]; EMBEDDINGS [B, D]; values [B].
    """

    def setup(self) -> None:
        cfg = _module_config(self.model_config)
        self._config = cfg
        enc_cfg = _encoder_config(cfg, self.observation_space)
        net = EditPolicyNet(cfg, enc_cfg)
        # The policy's parts are registered here under their own names (the state keys, and so
        # RLlib checkpoints, stay what they were); the net is kept unregistered beside them, so
        # it shares these weights without listing them twice.
        self._encoder = net.encoder
        self._type_head = net.type_head
        self._conditioned_heads = net.conditioned_heads
        object.__setattr__(self, "_policy_net", net)
        self.action_dist_cls = AutoregressiveEditDistribution
        if self.inference_only:  # env runners only act: no value or auxiliary heads
            return
        D, Hh = cfg.hidden, cfg.head_hidden
        self._value_encoder = CursorEncoder(enc_cfg) if cfg.separate_value_network else None
        self._value_head = mlp(D, Hh, 1)
        self._tempo_head = mlp(D, Hh, cfg.n_tempo_bins)
        self._energy_head = mlp(D, Hh, cfg.n_energy_classes)
        self._phrase_head = mlp(D, Hh, 1)

    @property
    def policy_net(self) -> EditPolicyNet:
        """The policy as a plain ``nn.Module``, sharing this module's weights (not a copy)."""
        net: EditPolicyNet = self.__dict__["_policy_net"]
        return net

    def get_non_inference_attributes(self) -> list[str]:
        """Submodules that an ``inference_only`` copy (on an env runner) leaves out."""
        return list(_NON_INFERENCE_ATTRIBUTES)

    def save_to_path(
        self,
        path: str | pathlib.Path | None = None,
        *,
        state: dict[str, Any] | None = None,
        filesystem: Any = None,
        use_msgpack: bool = False,
    ) -> str:
        """RLlib's save, plus ``policy_net.json`` and ``policy_net.pt`` in the same folder.

        The two extra files hold the policy's config and weights (of ``state`` when given) in a
        format :func:`~editorbot.models.policy_net.load_policy_net` reads without Ray or pickle.
        """
        import pyarrow.fs

        saved = super().save_to_path(
            path, state=state, filesystem=filesystem, use_msgpack=use_msgpack
        )
        if filesystem is None:  # as RLlib's save did: from the path (a local folder if none)
            filesystem = pyarrow.fs.FileSystem.from_uri(saved if path is None else str(path))[0]
        net = self.policy_net
        weights = state if state is not None else self.state_dict()
        if not set(net.state_dict()) <= set(weights):  # a partial state: no policy to write
            logger.debug("%s: state without the policy's weights; no %s", saved, POLICY_WEIGHTS)
            return saved
        for name, content in policy_files(weights, net.config, net.encoder_config).items():
            with filesystem.open_output_stream((pathlib.Path(saved) / name).as_posix()) as f:
                f.write(content)
        return saved

    def _encode(self, obs: dict[str, torch.Tensor], *, reuse: bool = False) -> torch.Tensor:
        return self.policy_net.encode(obs, reuse=reuse)

    def _policy_inputs(self, emb: torch.Tensor, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Masked logits of the three heads, packed for the distribution: [B, 620]."""
        return pack_logits(*self.policy_net.heads(emb, obs))

    def forward_inference(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """RLlib's, without its two passes over every submodule per call (``eval()`` then
        ``train()``: 10 % of a sampling step) when no layer acts differently in eval mode."""
        if self._config.dropout > 0:
            return super().forward_inference(batch, **kwargs)
        return self._forward_inference(batch, **kwargs)  # under torch.no_grad (RLlib's)

    def forward_exploration(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """As :meth:`forward_inference`."""
        if self._config.dropout > 0:
            return super().forward_exploration(batch, **kwargs)
        return self._forward_exploration(batch, **kwargs)

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Inference and exploration (env runners): the static part from the track cache."""
        obs = batch[Columns.OBS]
        emb = self._encode(obs, reuse=True)
        return {Columns.ACTION_DIST_INPUTS: self._policy_inputs(emb, obs)}

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Policy inputs plus the shared embedding and the auxiliary logits (keys ``AUX_*``)."""
        obs = batch[Columns.OBS]
        emb = self._encode(obs)
        return {
            Columns.ACTION_DIST_INPUTS: self._policy_inputs(emb, obs),
            Columns.EMBEDDINGS: emb,
            AUX_TEMPO_LOGITS: self._tempo_head(emb),
            AUX_ENERGY_LOGITS: self._energy_head(emb),
            AUX_PHRASE_LOGITS: self._phrase_head(emb).squeeze(-1),
        }

    def compute_values(
        self, batch: dict[str, Any], embeddings: torch.Tensor | None = None
    ) -> torch.Tensor:
        """State values [B]; reuses ``embeddings`` from ``_forward_train`` when shared."""
        obs = batch[Columns.OBS]
        if self._value_encoder is not None:
            embeddings = self._value_encoder(
                obs[obs_keys.OBS_TOKENS], obs[obs_keys.OBS_GLOBALS], obs.get(obs_keys.OBS_TRACK)
            )
        elif embeddings is None:
            embeddings = self._encode(obs)
        return self._value_head(embeddings).squeeze(-1)


def aux_losses(fwd_out: dict[str, Any], batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Auxiliary losses of the cursor beat: tempo bin, energy class (cross-entropy) and phrase
    boundary (binary cross-entropy), each a mean over the rows whose target is known.

    A negative target means unknown for that row (e.g. no tempo estimate) and is skipped; a loss
    with no known row is 0.

    Args:
        fwd_out: output of ``EditorRLModule.forward_train`` (the ``AUX_*`` keys).
        batch: the train batch; targets are read from ``batch[Columns.OBS]["aux_targets"]``.

    Returns:
        {"aux_tempo": ..., "aux_energy": ..., "aux_phrase": ...}, scalar tensors.
    """
    targets = batch[Columns.OBS][obs_keys.OBS_AUX_TARGETS]
    tempo = targets[..., obs_keys.AUX_TEMPO_BIN]
    energy = targets[..., obs_keys.AUX_ENERGY_CLASS]
    phrase = targets[..., obs_keys.AUX_PHRASE_BOUNDARY]
    return {
        "aux_tempo": _masked_ce(fwd_out[AUX_TEMPO_LOGITS], tempo, "n_tempo_bins"),
        "aux_energy": _masked_ce(fwd_out[AUX_ENERGY_LOGITS], energy, "n_energy_classes"),
        "aux_phrase": _masked_bce(fwd_out[AUX_PHRASE_LOGITS], phrase),
    }


def _masked_ce(logits: torch.Tensor, target: torch.Tensor, field: str) -> torch.Tensor:
    known = target >= 0
    if not bool(known.any()):
        return logits.sum() * 0.0  # keeps the graph (and the device) without a NaN
    classes = target[known].round().long()
    n_classes = logits.shape[-1]
    if int(classes.max()) >= n_classes:
        raise ParameterError(
            f"aux_losses: target class {int(classes.max())} but the head has {n_classes} "
            f"classes; raise ModuleConfig.{field} to match the environment"
        )
    return F.cross_entropy(logits[known], classes)


def _masked_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    known = target >= 0
    if not bool(known.any()):
        return logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(logits[known], target[known].float())
