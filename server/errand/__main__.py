"""``python -m errand``: the command line."""

import sys

from errand.frontends.cli.main import main

sys.exit(main())
