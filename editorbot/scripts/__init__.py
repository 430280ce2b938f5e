"""The seed's script entry points (``python -m editorbot.scripts.NAME``)."""
