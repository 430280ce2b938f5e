"""``python -m editorbot.supervised_trainer``: the seed's ``editorbot train supervised``."""

import sys

from editorbot.commands.seed import supervised_trainer as main

if __name__ == "__main__":
    sys.exit(main())
