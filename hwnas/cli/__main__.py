"""``python -m hwnas.cli``: the ``hwnas`` command."""

import sys

from hwnas.cli import main

sys.exit(main())
