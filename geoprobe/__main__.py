"""``python -m geoprobe`` is the ``geoprobe`` command."""

import sys

from .cli import main

sys.exit(main())
