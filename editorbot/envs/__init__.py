"""The gymnasium editing environment, its reward, and its RLlib registration."""
