"""``python -m editorbot`` is the ``editorbot`` console script."""

import sys

from editorbot.cli import main

sys.exit(main())
