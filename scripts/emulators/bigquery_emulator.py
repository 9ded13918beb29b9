"""Starts the BigQuery emulator (PyPI `bqemulator`) offline.

bqemulator's DuckDB engine downloads its `spatial` extension at start-up,
which fails without a network; runnel's sink needs no GIS, so that step is
skipped. Arguments are bqemulator's own (`start --rest-port P ...`).
"""

import sys

import bqemulator.storage.engine as engine

engine.DuckDBEngine._load_spatial = lambda self: None

from bqemulator.cli import main  # noqa: E402  (after the patch)

sys.argv = ["bqemulator"] + sys.argv[1:]
sys.exit(main())
