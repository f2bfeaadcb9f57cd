"""sources.yaml at scale: load and validate 10,000 real feeds (Kagi Kite's list, topped up).

Run from the repository root: ``.venv/bin/python -m benchmarks sources``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from aggregator.sources.edit import NewSource, SourcesDocument
from aggregator.sources.load import load_config
from tests.support.source_lists import big_sources_yaml

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
LISTS = SHARED / "source_lists"


def run() -> None:
    if not (LISTS / "kagi_kite" / "kite_feeds.json").is_file():
        print(f"skipped: {LISTS.resolve()} not found (fresh clone without ../shared/data)")
        return
    text = big_sources_yaml(LISTS)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sources.yaml"
        path.write_text(text, encoding="utf-8")
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            config = load_config(path, env={})
            timings.append(time.perf_counter() - started)
        started = time.perf_counter()
        doc = SourcesDocument(path)
        doc.add(NewSource(url="https://bench.example/feed.xml", name="Bench"))
        doc.save()
        add_time = time.perf_counter() - started
    lines = text.count("\n")
    print(
        f"load+validate {len(config.sources):,} sources ({lines:,} lines): "
        f"best {min(timings):.2f} s, worst {max(timings):.2f} s of 3 (target < 2 s)"
    )
    print(f"add one source to that file (validate, append, re-validate, write): {add_time:.2f} s")
