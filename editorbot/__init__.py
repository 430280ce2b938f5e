"""editorbot: learn a music editor's style from (raw, edited) pairs and apply it to new tracks."""

__version__ = "0.1.0"

__all__ = ["__version__"]
