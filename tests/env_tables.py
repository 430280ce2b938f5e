"""Synthetic track tables with a known expert, shared by the environment and RL tests.

Each track is a sequence of 16-beat phrases; a phrase's features are a section vector plus
noise, and the expert's decision depends on the music: quiet phrases are cut, loud ones kept
bar by bar, the rest get a +3 dB gain two bars at a time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from editorbot.editing.actions import ActionAmount, ActionSize, ActionType
from editorbot.envs.track_table import TrackTable, build_table

N_FEATURES = 121
PHRASE = 16

_KEEP = (ActionType.KEEP, ActionSize.BAR, ActionAmount.NEUTRAL)
_CUT = (ActionType.CUT, ActionSize.PHRASE, ActionAmount.NEUTRAL)
_GAIN = (ActionType.GAIN, ActionSize.TWO_BARS, ActionAmount.POS_SMALL)


def make_table(
    seed: int, *, n_phrases: int = 8, name: str | None = None, confidence: float | None = None
) -> TrackTable:
    """One synthetic track of ``n_phrases`` × 16 beats whose expert depends on its energy;
    ``confidence`` is every other expert action's label confidence (the rest 1; None: all 1)."""
    rng = np.random.default_rng(seed)
    n = n_phrases * PHRASE
    loudness = rng.permutation(np.resize(np.array([0.0, 1.0, 2.0]), n_phrases))
    sections = rng.normal(size=(3, N_FEATURES)).astype(np.float32)
    features = np.repeat(sections[loudness.astype(int)], PHRASE, axis=0)
    features += 0.3 * rng.normal(size=features.shape).astype(np.float32)
    features[:, 1] = np.repeat(loudness, PHRASE) - 1.0  # the "rms" column carries the loudness
    actions: list[tuple[int, int, int]] = []
    for level in loudness:
        if level == 0.0:
            actions.append(_CUT)
        elif level == 2.0:
            actions.extend([_KEEP] * 4)
        else:
            actions.extend([_GAIN] * 2)
    phrase_start = np.zeros(n, np.float32)
    phrase_start[::PHRASE] = 1.0
    return build_table(
        name or f"track{seed}",
        features=features,
        tempo_bpm=float(rng.uniform(90, 150)),
        beat_sec=0.5,
        energy=np.repeat(loudness, PHRASE) + 0.1 * rng.random(n),
        phrase_start=phrase_start,
        expert_actions=np.asarray(actions, np.int64),
        expert_confidence=None
        if confidence is None
        else np.where(np.arange(len(actions)) % 2 == 1, confidence, 1.0),
    )


def write_untrained_checkpoint(path: Path) -> Path:
    """An untrained tiny RL network saved as ``best/`` by the real save path (identity
    normaliser), for tests of ``edit`` whose assertions do not depend on what it learned."""
    import torch

    from editorbot.envs.editing_env import EditingEnv
    from editorbot.envs.track_table import FeatureNormalizer
    from editorbot.models.rl_module import EditorRLModule, ModuleConfig
    from editorbot.training.ppo import RLRunConfig
    from editorbot.training.rl_train import write_best

    cfg = RLRunConfig(module=ModuleConfig.tiny())
    env = EditingEnv({"tables": [make_table(0)]})
    # Seeded: the weights must not depend on what ran before in the session (a net drawn
    # from another RNG state may jump back often enough to pass the renderer's output limit).
    torch.manual_seed(0)
    module = EditorRLModule(
        observation_space=env.observation_space,
        action_space=env.action_space,
        model_config=cfg.module.__dict__,
    )
    normalizer = FeatureNormalizer(
        np.zeros(N_FEATURES, np.float32), np.ones(N_FEATURES, np.float32)
    )
    write_best(path, module, normalizer, cfg, {"window": 64}, [make_table(0)], {"iteration": 0})
    return path
