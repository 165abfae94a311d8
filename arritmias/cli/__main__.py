"""``python -m arritmias.cli ...``: the ``arritmias`` command."""

import sys

from arritmias.cli import main

sys.exit(main())
