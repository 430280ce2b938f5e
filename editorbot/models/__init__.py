"""NATTEN encoder (+ exact PyTorch fallback), RLModule, supervised model, losses."""
