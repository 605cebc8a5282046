"""``python -m benchmark``: see :mod:`benchmark.cli`."""
import sys

from benchmark.cli import main

if __name__ == "__main__":  # spawned DDP processes import the main module; only the command line runs it
    sys.exit(main())
