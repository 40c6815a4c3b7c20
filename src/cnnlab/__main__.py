"""``python -m cnnlab <task> [overrides]`` works like the ``cnnlab`` console script."""

from cnnlab.cli import main

if __name__ == "__main__":
    main()
