"""PPO/BC configs, the PPO+BC learner, the Ray Train loop, Tune sweeps."""
