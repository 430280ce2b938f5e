"""``EditPolicyNet``: the RL agent's policy as a plain ``nn.Module`` (encoder + three heads).

The network of :class:`~editorbot.models.rl_module.EditorRLModule` without RLlib: one encoder
pass (:class:`~editorbot.models.cursor_encoder.CursorEncoder`: the static beats by neighbourhood
attention, which :meth:`EditPolicyNet.encode` with ``reuse`` takes from a per-track cache, then
the cursor's view of them), the type head, and the conditioned heads that give size logits
for every type and amount logits for every (type, size). The RLModule wraps this module
(sharing its submodules), so training changes these weights; ``editorbot edit`` loads them from
two safe files written beside every saved RLModule and never imports ``ray``:

    policy_net.json   {"format", "module_config", "encoder_config"}
    policy_net.pt     the state dict (tensors only; read with ``torch.load(weights_only=True)``)

The greedy action (argmax type, then the argmax size of that type, then the argmax amount of
that (type, size)) and the sampled one are :func:`greedy_chain` and :func:`sample_chain`, which
:class:`~editorbot.models.distribution.AutoregressiveEditDistribution` calls too, so a seed
gives the same edit through either.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from editorbot.config import from_dict
from editorbot.editing.actions import N_AMOUNTS, N_SIZES, N_TYPES
from editorbot.envs import spaces as obs_keys
from editorbot.errors import CheckpointError, ParameterError
from editorbot.models.cursor_encoder import CursorEncoder, TrackCache
from editorbot.models.natten_encoder import EncoderConfig, EncoderSizes

logger = logging.getLogger(__name__)

FLOAT_MIN = -3.4e38
"""Logit added for a masked action: RLlib's ``ray.rllib.utils.torch_utils.FLOAT_MIN`` (a test
checks they agree), finite so that entropy and KL stay finite."""
POLICY_JSON = "policy_net.json"
POLICY_WEIGHTS = "policy_net.pt"
POLICY_FORMAT = "editorbot.policy_net/2"
"""Version tag of the two files; a loader refuses any other (/1: the encoder before the static /
cursor split)."""


@dataclass(frozen=True)
class ModuleConfig(EncoderSizes):
    """Sizes of the RL network: the encoder's (:class:`EncoderSizes`: ``hidden``, ``heads``,
    ``layers``, ``kernel_size``, ``dilation``, ``mlp_ratio``, ``dropout``, ``backend``) and the
    heads'; window and feature counts come from the observation space. The encoder's static
    reach, ``layers * dilation * (kernel_size // 2)``, must stay below ``window // 2``
    (:mod:`editorbot.models.cursor_encoder`)."""

    kernel_size: int = 11
    """K, beats each beat attends to [beats]; odd (3 layers of 11 reach 15 beats: the cursor
    attends to the 33 beats around it, each seeing 15 beats further)."""
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
        (a few hundred expert steps per editor do not need 11.6 M parameters). Two layers of
        17 beats reach 16 beats, leaving the cursor the 31 beats around it.
        """
        return cls(hidden=128, heads=4, layers=2, kernel_size=17, mlp_ratio=2.0,
                   head_hidden=128, embedding_dim=16)  # fmt: skip

    def encoder_config(
        self, *, window: int, n_token_features: int, n_globals: int
    ) -> EncoderConfig:
        """The encoder's config for an observation space of these sizes."""
        return EncoderConfig(
            **self.encoder_sizes(),
            n_token_features=n_token_features,
            n_globals=n_globals,
            window=window,
        )


class PolicyLogits(NamedTuple):
    """Masked logits of the three autoregressive heads.

    Shape:
        type: [B, 20]; size: [B, 20, 5] (per type); amount: [B, 20, 5, 5] (per type and size).
    """

    type: torch.Tensor
    size: torch.Tensor
    amount: torch.Tensor


def mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    """Linear → GELU → Linear, the shape of every head."""
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_out))


def log_mask(mask: torch.Tensor) -> torch.Tensor:
    """0 where allowed, :data:`FLOAT_MIN` where masked (never -inf: entropy and KL would be NaN)."""
    return torch.clamp(torch.log(mask), min=FLOAT_MIN)


class ConditionedHeads(nn.Module):
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


POLICY_SUBMODULES = ("_encoder", "_type_head", "_conditioned_heads")
"""Attribute names of the policy's parts, the same in :class:`EditPolicyNet` and the RLModule, so
the policy's state keys are the RLModule's own (RLlib checkpoints keep their names)."""


class EditPolicyNet(nn.Module):
    """Encoder + type head + conditioned heads: observation → masked logits → action.

    Args:
        config: the network sizes.
        encoder_config: the encoder's config (window and feature counts included), e.g.
            ``config.encoder_config(window=..., n_token_features=..., n_globals=...)``.

    Shape:
        obs tokens [B, W, F_tok], globals [B, G], masks [B, 20], [B, 20, 5], [B, 20, 5].
        Embedding [B, D]; logits see :class:`PolicyLogits`; actions [B, 3] int64.
    """

    def __init__(self, config: ModuleConfig, encoder_config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder_config = encoder_config
        D, Hh = config.hidden, config.head_hidden
        self._encoder = CursorEncoder(encoder_config)
        self._type_head = mlp(D, Hh, N_TYPES)
        self._conditioned_heads = ConditionedHeads(D, Hh, config.embedding_dim)
        # Plain attribute (not a submodule): it holds tensors derived from the weights.
        self._track_cache = TrackCache(self._encoder)

    @property
    def encoder(self) -> CursorEncoder:
        return self._encoder

    @property
    def type_head(self) -> nn.Sequential:
        return self._type_head

    @property
    def conditioned_heads(self) -> ConditionedHeads:
        return self._conditioned_heads

    def encode(self, obs: Mapping[str, torch.Tensor], *, reuse: bool = False) -> torch.Tensor:
        """The cursor beat's embedding [B, D].

        With ``reuse``, outside autograd and where the observations' tracks are registered in
        this process, the static part comes from the per-track cache (the same network, within
        float32 rounding); otherwise from the observations' windows, each chunk of a track's
        static beats encoded once per batch where the ``track`` observation is given.
        """
        tokens, globals_ = obs[obs_keys.OBS_TOKENS], obs[obs_keys.OBS_GLOBALS]
        track = obs.get(obs_keys.OBS_TRACK)
        rows = None
        if reuse and track is not None and self._cache_is_exact():
            rows = self._track_cache.step_rows(track)
        if rows is None:
            return self._encoder(tokens, globals_, track)
        return self._encoder.forward_rows(rows, tokens, globals_)

    def _cache_is_exact(self) -> bool:
        """Cached rows are the forward's when no gradient is wanted and dropout is inactive."""
        dropout_on = self._encoder.training and self.encoder_config.dropout > 0
        return not torch.is_grad_enabled() and not dropout_on

    def heads(self, emb: torch.Tensor, obs: Mapping[str, torch.Tensor]) -> PolicyLogits:
        """Masked logits of the three heads from the embedding [B, D]."""
        type_logits = self._type_head(emb) + log_mask(obs[obs_keys.OBS_TYPE_MASK])
        size_logits, amount_logits = self._conditioned_heads(emb)
        size_logits = size_logits + log_mask(obs[obs_keys.OBS_SIZE_MASK])
        # The amount mask is per type; the same valid amounts hold for every size.
        amount_logits = amount_logits + log_mask(obs[obs_keys.OBS_AMOUNT_MASK])[:, :, None, :]
        return PolicyLogits(type_logits, size_logits, amount_logits)

    def forward(self, obs: Mapping[str, torch.Tensor], *, reuse: bool = False) -> PolicyLogits:
        return self.heads(self.encode(obs, reuse=reuse), obs)

    def act(self, obs: Mapping[str, torch.Tensor], *, sample: bool = False) -> torch.Tensor:
        """Greedy (or, with ``sample``, drawn from torch's global RNG) actions [B, 3] int64
        (the static part from the per-track cache where it can be)."""
        logits = self(obs, reuse=True)
        return sample_actions(logits) if sample else greedy_actions(logits)


def select_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Per row, the slice of ``x`` at ``index`` along the first dim after the batch dims.

    Shape:
        x: [..., N, *rest]; index: [...] (values < N). Returns: [..., *rest].
    """
    dim = index.ndim
    rest = x.shape[dim + 1 :]
    idx = index.reshape(*index.shape, 1, *([1] * len(rest))).expand(*index.shape, 1, *rest)
    return x.gather(dim, idx).squeeze(dim)


def greedy_chain(
    type_logp: torch.Tensor, size_logp: torch.Tensor, amount_logp: torch.Tensor
) -> torch.Tensor:
    """The greedy chain on log-probabilities: argmax type, then its argmax size, then the
    argmax amount of that (type, size). The one greedy rule of ``edit`` and of RLlib's
    deterministic distribution (``AutoregressiveEditDistribution.to_deterministic``).

    Shape:
        type_logp: [..., 20]; size_logp: [..., 20, 5]; amount_logp: [..., 20, 5, 5].
        Returns: [..., 3] int64 (type, size, amount).
    """
    t = type_logp.argmax(dim=-1)
    s = select_rows(size_logp, t).argmax(dim=-1)
    m = select_rows(select_rows(amount_logp, t), s).argmax(dim=-1)
    return torch.stack([t, s, m], dim=-1)


def sample_chain(
    type_logp: torch.Tensor, size_logp: torch.Tensor, amount_logp: torch.Tensor
) -> torch.Tensor:
    """Draw (type, size, amount) in order from torch's global RNG, each given the ones before.

    The one sampling rule of ``edit`` and of RLlib's ``AutoregressiveEditDistribution.sample``,
    so ``torch.manual_seed(k)`` fixes the edit whichever way the policy is run.

    Shape:
        as :func:`greedy_chain`.
    """

    def Categorical(logits: torch.Tensor) -> torch.distributions.Categorical:
        # The arguments are log-softmax rows; checking them costs more than the draw.
        return torch.distributions.Categorical(logits=logits, validate_args=False)

    t = Categorical(logits=type_logp).sample()
    s = Categorical(logits=select_rows(size_logp, t)).sample()
    amount_rows = select_rows(amount_logp, t)  # [..., 5 sizes, 5 amounts]
    m = Categorical(logits=select_rows(amount_rows, s)).sample()
    return torch.stack([t, s, m], dim=-1)


def _log_probs(logits: PolicyLogits) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Log-softmax of every row of the three heads (type; size per type; amount per pair)."""
    t, s, m = (torch.log_softmax(x, dim=-1) for x in logits)
    return t, s, m


def greedy_actions(logits: PolicyLogits) -> torch.Tensor:
    """:func:`greedy_chain` of the heads' log-probabilities. Returns: [B, 3] int64."""
    return greedy_chain(*_log_probs(logits))


def sample_actions(logits: PolicyLogits) -> torch.Tensor:
    """:func:`sample_chain` of the heads' log-probabilities. Returns: [B, 3] int64."""
    return sample_chain(*_log_probs(logits))


def policy_state(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The policy's entries of an RLModule state dict (tensors or numpy arrays), as CPU tensors."""
    prefixes = tuple(f"{name}." for name in POLICY_SUBMODULES)
    return {
        k: torch.as_tensor(v).detach().cpu() for k, v in state.items() if k.startswith(prefixes)
    }


def policy_files(
    state: Mapping[str, Any], config: ModuleConfig, encoder_config: EncoderConfig
) -> dict[str, bytes]:
    """The bytes of :data:`POLICY_JSON` and :data:`POLICY_WEIGHTS` for a policy state.

    Args:
        state: an :class:`EditPolicyNet` or RLModule state dict (other keys are dropped).
        config: the network sizes.
        encoder_config: the encoder's config.

    Returns:
        ``{file name: content}``.
    """
    weights = io.BytesIO()
    torch.save(policy_state(state), weights)
    meta = {
        "format": POLICY_FORMAT,
        "module_config": asdict(config),
        "encoder_config": asdict(encoder_config),
    }
    return {
        POLICY_JSON: json.dumps(meta, indent=1).encode(),
        POLICY_WEIGHTS: weights.getvalue(),
    }


def save_policy_net(net: EditPolicyNet, folder: str | Path) -> None:
    """Write ``net`` as :data:`POLICY_JSON` + :data:`POLICY_WEIGHTS` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in policy_files(net.state_dict(), net.config, net.encoder_config).items():
        (folder / name).write_bytes(content)


def has_policy_net(folder: str | Path) -> bool:
    """Whether ``folder`` holds the two policy files."""
    folder = Path(folder)
    return (folder / POLICY_JSON).is_file() and (folder / POLICY_WEIGHTS).is_file()


def load_policy_net(folder: str | Path) -> EditPolicyNet:
    """The policy saved in ``folder``, in eval mode on the CPU (no pickle: tensors only).

    Raises:
        CheckpointError: a file is missing, unreadable, of another format, or does not match
            the network its config describes.
    """
    from editorbot.safe_load import build_checked, load_tensors, read_json_object

    folder = Path(folder)
    meta = read_json_object(folder / POLICY_JSON)
    fmt = meta.get("format")
    if fmt != POLICY_FORMAT:
        raise CheckpointError(
            f"{folder / POLICY_JSON}: format {fmt!r}, this editorbot reads {POLICY_FORMAT!r}; "
            "retrain the model (or use the editorbot release that wrote it)"
        )
    source = str(folder / POLICY_JSON)
    try:
        config = from_dict(ModuleConfig, meta.get("module_config"), source=source)
        encoder_config = from_dict(EncoderConfig, meta.get("encoder_config"), source=source)
    except ParameterError as e:
        raise CheckpointError(str(e)) from e
    state = load_tensors(folder / POLICY_WEIGHTS)
    # Shapes checked on the meta device first: a config with huge sizes allocates nothing.
    net = build_checked(lambda: EditPolicyNet(config, encoder_config), state, source=source)
    return net.eval()
