"""``python -m device_agent`` runs the agent's command line (see :mod:`device_agent.cli`)."""

from __future__ import annotations

import sys

from device_agent.cli import main

if __name__ == "__main__":
    sys.exit(main())
