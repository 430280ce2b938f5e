"""Audio I/O, resampling, beat grid, beat features and stems (no Ray here)."""
