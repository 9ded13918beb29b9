"""Starts the BigQuery emulator (PyPI `bqemulator`) offline.

bqemulator's DuckDB engine downloads its `spatial` extension at start-up,
which fails without a network; runnel's sink needs no GIS, so that step is
skipped. Arguments are bqemulator's own (`start --rest-port P ...`).

Its engine shares one DuckDB connection between requests, and a read
(`tabledata.list`, a query) can leave its result unfinished on it; DuckDB
then refuses the next `insertAll`'s `register` ("connection has an
unfinished result") for as long as no other statement replaces it, and a
streaming writer (Beam's WriteToBigQuery) retries into that wall for
minutes. Each write now first runs a statement of its own to the end.
"""

import contextlib
import sys

import bqemulator.storage.engine as engine

engine.DuckDBEngine._load_spatial = lambda self: None

_write_lock = engine.DuckDBEngine.write_lock


@contextlib.asynccontextmanager
async def _write_lock_on_a_finished_connection(self):
    async with _write_lock(self):
        self.connection.execute("SELECT 1").fetchall()
        yield


engine.DuckDBEngine.write_lock = _write_lock_on_a_finished_connection

from bqemulator.cli import main  # noqa: E402  (after the patch)

sys.argv = ["bqemulator"] + sys.argv[1:]
sys.exit(main())
