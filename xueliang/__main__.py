"""`python -m xueliang`: the same as the `xueliang` command."""

import sys

from xueliang.cli import main

# Guarded: the telemetry worker is started with "spawn", which imports modules again.
if __name__ == "__main__":
    sys.exit(main())
