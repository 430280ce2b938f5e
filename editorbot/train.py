"""``python -m editorbot.train``: the seed's ``editorbot train rl`` (flags: commands/seed.py)."""

import sys

from editorbot.commands.seed import train as main

if __name__ == "__main__":
    sys.exit(main())
