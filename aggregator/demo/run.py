"""``aggregator demo``: the whole pipeline, offline, on the demo outlets served on 127.0.0.1."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from aggregator.demo.server import DemoServer, demo_config
from aggregator.pipeline import RunReport, run_once
from aggregator.store.storage import Storage


def run_demo(
    out_dir: Path, db_url: str | None = None, *, serving: Callable[[str], None] | None = None
) -> RunReport:
    """Serve the demo outlets, run one full cycle into ``out_dir`` and stop the server.

    The database is a SQLite file in a temporary directory unless ``db_url`` names one;
    ``serving`` is told the outlets' base URL once they are up.
    """
    with tempfile.TemporaryDirectory(prefix="aggregator-demo-") as data_dir, DemoServer() as srv:
        config = demo_config(srv.base_url, out_dir=out_dir, data_dir=Path(data_dir))
        if serving is not None:
            serving(srv.base_url)
        with Storage(config.database_url(db_url)) as storage:
            return run_once(config, storage, out_dir=out_dir)
