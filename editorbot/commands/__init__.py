"""CLI subcommands, one module each; see editorbot.cli."""
