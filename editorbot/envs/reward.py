"""The editing environment's reward: earned per raw beat consumed, never per step.

Two parts:

- **Agreement**, paid as the cursor consumes raw beats: for each consumed beat, ``w_type`` if the
  action's type equals the expert's for that beat, plus ``w_size`` / ``w_amount`` if the size /
  amount also match (only counted when the type matches: a right size on a wrong type means
  nothing), each beat weighted by its label's confidence (``TrackTable.expert_weight``: 1 for
  true decisions). Divided by the track's beat count, so a perfect episode of true decisions earns
  ``w_type + w_size + w_amount`` whatever the track length or the action sizes — short actions
  cannot farm it, and an action that consumes no beat (a jump back) earns nothing.
- **Terminal**, paid once at the end: ``w_similarity`` × the similarity of the output's
  beat-feature sequence (raw features read through the output map) to the human edit's, minus
  ``w_duration`` × the relative duration error against the human edit's duration.

The similarity compares the two output maps after resampling both to ``n_compare`` positions
(nearest neighbour), so it is order-aware and needs no alignment: per position, the cosine
similarity of the normalised beat features mapped to [0, 1], averaged with whether the applied
types match. Resampling to a fixed length follows the idea of comparing sequences at a common
time base, as in shape-based time-series similarity (https://doi.org/10.1145/375663.375680).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from editorbot.envs.track_table import NO_EXPERT, TrackTable


@dataclass(frozen=True)
class RewardConfig:
    """Weights of the reward terms."""

    w_type: float = 1.0
    """[reward / episode] paid in full when every beat's type matches the expert's."""
    w_size: float = 0.25
    """[reward / episode] paid in full when every beat's type and size match."""
    w_amount: float = 0.25
    """[reward / episode] paid in full when every beat's type and amount match."""
    w_similarity: float = 1.0
    """[reward] at episode end × output/human-edit similarity in [0, 1]."""
    w_duration: float = 1.0
    """[reward] at episode end × relative duration error |out / target - 1| (capped at 1)."""
    n_compare: int = 64
    """[positions] both output maps are resampled to this length for the similarity."""


def agreement(
    table: TrackTable, start: int, stop: int, action: tuple[int, int, int], config: RewardConfig
) -> tuple[float, float, float]:
    """Agreement reward terms (type, size, amount) for raw beats ``[start, stop)`` consumed by one
    action. Beats without an expert label earn nothing.

    Returns:
        The three terms, each already weighted and divided by the track's beat count.
    """
    if stop <= start or not table.has_expert:
        return 0.0, 0.0, 0.0
    t, s, a = action
    type_hit = table.expert_type[start:stop] == t
    if not type_hit.any():
        return 0.0, 0.0, 0.0
    # Each matching beat pays its label's confidence (1 for true decisions), so a guess of the
    # labeller is worth less than a reading it is sure of.
    weight = table.expert_weight[start:stop]
    n_type = float(weight[type_hit].sum())
    n_size = float(weight[type_hit & (table.expert_size[start:stop] == s)].sum())
    n_amount = float(weight[type_hit & (table.expert_amount[start:stop] == a)].sum())
    per_beat = 1.0 / table.n_beats
    return (
        config.w_type * n_type * per_beat,
        config.w_size * n_size * per_beat,
        config.w_amount * n_amount * per_beat,
    )


def output_similarity(
    table: TrackTable, out_beats: np.ndarray, out_types: np.ndarray, *, n_compare: int
) -> float:
    """Similarity in [0, 1] of an output map to the human edit's (1 = the same output).

    Args:
        table: the track (features and the expert's output map).
        out_beats: [shape=(m,)] raw beat index of each output beat.
        out_types: [shape=(m,)] action type applied to each output beat.
        n_compare: resampled length of both maps.
    """
    ref_beats, ref_types = table.expert_output_beats, table.expert_output_types
    if len(out_beats) == 0 or len(ref_beats) == 0:
        return float(len(out_beats) == len(ref_beats))
    i_out = _resample_index(len(out_beats), n_compare)
    i_ref = _resample_index(len(ref_beats), n_compare)
    f_out = table.features[out_beats[i_out]]
    f_ref = table.features[ref_beats[i_ref]]
    num = np.einsum("kf,kf->k", f_out, f_ref)
    den = np.linalg.norm(f_out, axis=1) * np.linalg.norm(f_ref, axis=1) + 1e-8
    feature_sim = float(np.mean((1.0 + num / den) / 2.0))
    type_sim = float(np.mean(out_types[i_out] == ref_types[i_ref]))
    return 0.5 * (feature_sim + type_sim)


def duration_error(table: TrackTable, out_duration_beats: float) -> float:
    """Relative error of the output duration against the human edit's, capped at 1."""
    target_beats = table.target_ratio * table.n_beats
    if target_beats <= 0:
        return 0.0
    return float(min(abs(out_duration_beats / target_beats - 1.0), 1.0))


def terminal(
    table: TrackTable,
    out_beats: np.ndarray,
    out_types: np.ndarray,
    out_duration_beats: float,
    config: RewardConfig,
) -> tuple[float, float]:
    """Terminal reward terms (similarity, −duration error), each weighted.

    Tracks without a human edit earn no terminal reward.
    """
    if not table.has_expert:
        return 0.0, 0.0
    sim = output_similarity(table, out_beats, out_types, n_compare=config.n_compare)
    return config.w_similarity * sim, -config.w_duration * duration_error(table, out_duration_beats)


def _resample_index(n: int, k: int) -> np.ndarray:
    """Nearest-neighbour indices resampling a length-``n`` sequence to ``k`` positions."""
    return np.minimum(((np.arange(k) + 0.5) * n / k).astype(np.int64), n - 1)


assert NO_EXPERT < 0  # agreement relies on NO_EXPERT never equalling a valid action index
