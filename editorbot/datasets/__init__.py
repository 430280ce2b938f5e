"""Pair discovery and validation, feature cache, demo-data generator, offline BC data."""
