"""`python -m wanlab.cli …`: the same as `wanlab …`."""

import sys

from . import main

sys.exit(main())
