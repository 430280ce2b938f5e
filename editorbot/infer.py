"""``python -m editorbot.infer``: the seed's entry point for ``editorbot edit`` (same flags)."""

import sys

from editorbot.commands.seed import infer as main

if __name__ == "__main__":
    sys.exit(main())
