"""`python -m xueliang`: the same as the `xueliang` command."""

import sys

from xueliang.cli import main

sys.exit(main())
