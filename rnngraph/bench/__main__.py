"""``python -m rnngraph.bench MODEL.py``: see `rnngraph.bench.model_file`."""

from __future__ import annotations

import sys

from rnngraph.bench.model_file import main

sys.exit(main())
