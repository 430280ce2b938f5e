"""``EditorRLModule``: the RL agent's policy, value and auxiliary heads on one NATTEN encoder.

One encoder pass per batch is shared by the three autoregressive policy heads (type; size given
type; amount given type and size), the value head and the auxiliary heads (tempo bin, energy
class, phrase boundary). The conditioned heads are evaluated for every type and every
(type, size) at once, so :class:`~editorbot.models.distribution.AutoregressiveEditDistribution`
gets all rows and computes exact log-probabilities, entropy and KL. Masks from the observation
are added to the logits as ``clamp(log(mask), min=FLOAT_MIN)``.

Cross into RLlib with ``RLModuleSpec(module_class=EditorRLModule,
model_config=dataclasses.asdict(ModuleConfig(...)))``; ``setup()`` rebuilds the dataclass.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import torch
import torch.nn.functional as F
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI, ValueFunctionAPI
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.torch_utils import FLOAT_MIN
from torch import nn

from editorbot.config import from_dict
from editorbot.editing.actions import N_AMOUNTS, N_SIZES, N_TYPES
from editorbot.envs import spaces as obs_keys
from editorbot.errors import ParameterError
from editorbot.models.distribution import AutoregressiveEditDistribution, pack_logits
from editorbot.models.natten_encoder import Backend, EncoderConfig, HybridNATTENEncoder

logger = logging.getLogger(__name__)

_RLLIB_MODEL_KEYS = frozenset(f.name for f in dataclasses.fields(DefaultModelConfig))
"""Keys RLlib merges into every ``model_config`` (e.g. PPO's ``vf_share_layers``); ignored."""

AUX_TEMPO_LOGITS = "aux_tempo_logits"
"""``_forward_train`` output: [B, n_tempo_bins] logits of the cursor beat's tempo bin."""
AUX_ENERGY_LOGITS = "aux_energy_logits"
"""``_forward_train`` output: [B, n_energy_classes] logits of the cursor beat's energy class."""
AUX_PHRASE_LOGITS = "aux_phrase_logits"
"""``_forward_train`` output: [B] logit that the cursor beat starts a phrase."""


@dataclass(frozen=True)
class ModuleConfig:
    """Sizes of :class:`EditorRLModule`; window and feature counts come from the obs space."""

    hidden: int = 512
    """D, encoder width [channels]."""
    heads: int = 8
    """H, attention heads [heads]."""
    layers: int = 3
    """Neighbourhood-attention layers [layers]."""
    kernel_size: int = 33
    """K, beats each beat attends to [beats]; odd."""
    dilation: int = 1
    """Step between attended beats [beats]."""
    mlp_ratio: float = 4.0
    """MLP width in the encoder as a multiple of ``hidden`` [ratio]."""
    dropout: float = 0.0
    """Dropout probability in the encoder [probability]."""
    backend: Backend = "auto"
    """Attention kernel: "auto" (natten on CUDA, fallback on CPU), "natten" or "torch"."""
    head_hidden: int = 256
    """Hidden width of every head MLP [channels]."""
    embedding_dim: int = 32
    """Width of the type and size embeddings that condition the later heads [channels]."""
    separate_value_network: bool = False
    """Give the value head its own encoder instead of sharing the policy's [flag]."""
    n_tempo_bins: int = 16
    """Classes of the tempo auxiliary head [bins]."""
    n_energy_classes: int = 4
    """Classes of the energy auxiliary head [classes]."""

    @classmethod
    def tiny(cls) -> ModuleConfig:
        """A small configuration for tests (a few thousand parameters, W from the space)."""
        return cls(hidden=32, heads=4, layers=1, kernel_size=9, mlp_ratio=2.0,
                   head_hidden=32, embedding_dim=8)  # fmt: skip

    @classmethod
    def compact(cls) -> ModuleConfig:
        """The run default (:class:`~editorbot.training.ppo.RLRunConfig`): 0.5 M parameters.

        The seed's 512-wide default costs ~1.2 GFLOP per step, 7 s for a 3-minute track on one
        core when the policy edits beat by beat (368 steps), against the 5 s goal; this one
        costs ~35× less and matched or beat it in held-out BC agreement on the demo styles
        (a few hundred expert steps per editor do not need 11.6 M parameters).
        """
        return cls(hidden=128, heads=4, layers=2, kernel_size=33, mlp_ratio=2.0,
                   head_hidden=128, embedding_dim=16)  # fmt: skip

    def encoder_config(
        self, *, window: int, n_token_features: int, n_globals: int
    ) -> EncoderConfig:
        """The encoder's config for an observation space of these sizes."""
        return EncoderConfig(
            n_token_features=n_token_features, n_globals=n_globals, window=window,
            hidden=self.hidden, heads=self.heads, layers=self.layers,
            kernel_size=self.kernel_size, dilation=self.dilation, mlp_ratio=self.mlp_ratio,
            dropout=self.dropout, backend=self.backend,
        )  # fmt: skip


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


def _mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_out))


def _log_mask(mask: torch.Tensor) -> torch.Tensor:
    """0 where allowed, FLOAT_MIN where masked (never -inf: entropy and KL would be NaN)."""
    return torch.clamp(torch.log(mask), min=FLOAT_MIN)


class _ConditionedHeads(nn.Module):
    """Size logits for every type and amount logits for every (type, size), in one call.

    Concatenating [embedding, type embedding(, size embedding)] before a linear layer equals
    summing separate projections of each part, which broadcasts over all types and sizes.

    Shape:
        emb: [B, D] -> size logits [B, 20, 5], amount logits [B, 20, 5, 5].
    """

    def __init__(self, d_model: int, d_hidden: int, d_embed: int) -> None:
        super().__init__()
        self.type_embedding = nn.Embedding(N_TYPES, d_embed)
        self.size_embedding = nn.Embedding(N_SIZES, d_embed)
        self.size_from_emb = nn.Linear(d_model, d_hidden)
        self.size_from_type = nn.Linear(d_embed, d_hidden, bias=False)
        self.size_out = nn.Linear(d_hidden, N_SIZES)
        self.amount_from_emb = nn.Linear(d_model, d_hidden)
        self.amount_from_type = nn.Linear(d_embed, d_hidden, bias=False)
        self.amount_from_size = nn.Linear(d_embed, d_hidden, bias=False)
        self.amount_out = nn.Linear(d_hidden, N_AMOUNTS)

    def forward(self, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, D = emb.shape
        e_type = self.type_embedding.weight  # [20, E]
        e_size = self.size_embedding.weight  # [5, E]
        h_size = self.size_from_emb(emb)[:, None] + self.size_from_type(e_type)[None]
        size_logits = self.size_out(F.gelu(h_size))  # [B, 20, 5]
        h_amount = (
            self.amount_from_emb(emb)[:, None, None]
            + self.amount_from_type(e_type)[None, :, None]
            + self.amount_from_size(e_size)[None, None, :]
        )
        amount_logits = self.amount_out(F.gelu(h_amount))  # [B, 20, 5, 5]
        return size_logits, amount_logits


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
        D, Hh = cfg.hidden, cfg.head_hidden
        self._encoder = HybridNATTENEncoder(enc_cfg)
        self._type_head = _mlp(D, Hh, N_TYPES)
        self._conditioned_heads = _ConditionedHeads(D, Hh, cfg.embedding_dim)
        self.action_dist_cls = AutoregressiveEditDistribution
        if self.inference_only:  # env runners only act: no value or auxiliary heads
            return
        self._value_encoder = HybridNATTENEncoder(enc_cfg) if cfg.separate_value_network else None
        self._value_head = _mlp(D, Hh, 1)
        self._tempo_head = _mlp(D, Hh, cfg.n_tempo_bins)
        self._energy_head = _mlp(D, Hh, cfg.n_energy_classes)
        self._phrase_head = _mlp(D, Hh, 1)

    def get_non_inference_attributes(self) -> list[str]:
        """Submodules that an ``inference_only`` copy (on an env runner) leaves out."""
        return list(_NON_INFERENCE_ATTRIBUTES)

    def _encode(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._encoder(obs[obs_keys.OBS_TOKENS], obs[obs_keys.OBS_GLOBALS])

    def _policy_inputs(self, emb: torch.Tensor, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Masked logits of the three heads, packed for the distribution: [B, 620]."""
        type_logits = self._type_head(emb) + _log_mask(obs[obs_keys.OBS_TYPE_MASK])
        size_logits, amount_logits = self._conditioned_heads(emb)
        size_logits = size_logits + _log_mask(obs[obs_keys.OBS_SIZE_MASK])
        # The amount mask is per type; the same valid amounts hold for every size.
        amount_logits = amount_logits + _log_mask(obs[obs_keys.OBS_AMOUNT_MASK])[:, :, None, :]
        return pack_logits(type_logits, size_logits, amount_logits)

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        obs = batch[Columns.OBS]
        emb = self._encode(obs)
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
            embeddings = self._value_encoder(obs[obs_keys.OBS_TOKENS], obs[obs_keys.OBS_GLOBALS])
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
