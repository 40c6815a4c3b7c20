"""``python -m cnnlab <task> [overrides]`` works like the ``cnnlab`` console script."""

import sys

from cnnlab.cli import console_main

if __name__ == "__main__":
    sys.exit(console_main())
