"""``python -m benchmark``: see :mod:`benchmark.cli`."""
import sys

from benchmark.cli import main

sys.exit(main())
