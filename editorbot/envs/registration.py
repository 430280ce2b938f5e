"""Registers :class:`~editorbot.envs.editing_env.EditingEnv` with RLlib/Tune under one name.

How to run: call :func:`register` in every process that builds an algorithm (the driver, and
again before ``Tuner.restore``); then ``PPOConfig().environment(ENV_NAME, env_config={...})``.
Env runners receive an ``EnvContext`` (a dict subclass) whose keys are the environment's config;
RLlib adds ``worker_index``/``vector_index`` attributes, not keys, so the dict passes unchanged.
"""

from __future__ import annotations

import logging
from typing import Any

from ray.tune.registry import register_env

from editorbot.envs.editing_env import EditingEnv

logger = logging.getLogger(__name__)

ENV_NAME = "editorbot/Editing-v0"
"""The name the editing environment is registered under."""


def make_env(env_config: dict[str, Any]) -> EditingEnv:
    """Build the environment from RLlib's env config (seeded per runner and vector index)."""
    config = dict(env_config)
    seed = config.get("seed")
    if seed is not None:
        # Different env copies must not walk the same track sequence.
        worker = getattr(env_config, "worker_index", 0)
        vector = getattr(env_config, "vector_index", 0)
        config["seed"] = int(seed) + 1000 * int(worker) + int(vector)
    return EditingEnv(config)


def register() -> str:
    """Register :data:`ENV_NAME` with Ray Tune's registry; returns the name."""
    register_env(ENV_NAME, make_env)
    return ENV_NAME
