"""The command line imports only what a command uses: --help, status and sources check start
without the clusterer, the crawler's HTTP client, the LLM client or the page extractor.

Measured with ``python -X importtime`` (which lists every module a process imports), not with a
timer: the list does not depend on the machine's load.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

# What the pipeline's stages need and these commands do not (each costs 0.1 to 1 s to import).
PIPELINE = {
    "numpy",
    "scipy",
    "sklearn",
    "aiohttp",
    "openai",
    "trafilatura",
    "feedparser",
    "fastfeedparser",
    "jinja2",
    "apscheduler",
}
DATABASE = {"sqlalchemy", "sqlmodel", "alembic"}
CONFIG = {"pydantic", "yaml", "ruamel", "lxml"}

SOURCES = """\
sources:
  - id: wire
    name: The Wire
    url: https://wire.example/feed.xml
"""


def _python(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """``python ARGV`` run in tmp_path with this checkout importable and no AGGREGATOR_ settings;
    it must succeed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    proc = subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _imported(tmp_path: Path, *args: str) -> set[str]:
    """The top-level packages ``python -m aggregator ARGS`` imports, run in tmp_path."""
    proc = _python(tmp_path, "-X", "importtime", "-m", "aggregator", *args)
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert "aggregator" in names, "python -X importtime printed no import list"
    return names


def test_help_imports_no_stage_no_database_and_no_config_reader(tmp_path: Path) -> None:
    names = _imported(tmp_path, "--help")
    assert not names & (PIPELINE | DATABASE | CONFIG), sorted(
        names & (PIPELINE | DATABASE | CONFIG)
    )
    for command in ("run", "crawl", "sources", "export", "db", "db backup", "schedule", "status"):
        names = _imported(tmp_path, *command.split(), "--help")
        assert not names & (PIPELINE | DATABASE), (command, sorted(names & (PIPELINE | DATABASE)))


def test_status_imports_the_database_but_no_stage(tmp_path: Path) -> None:
    (tmp_path / "sources.yaml").write_text(SOURCES)
    names = _imported(tmp_path, "status", "--db", f"sqlite:///{tmp_path / 'news.db'}", "--json")
    assert "sqlalchemy" in names  # the measurement sees what it should
    assert not names & PIPELINE, sorted(names & PIPELINE)


def test_the_healthcheck_reads_one_file_without_a_database_or_a_stage(tmp_path: Path) -> None:
    (tmp_path / "sources.yaml").write_text("settings:\n  health_file: health.json\n" + SOURCES)
    (tmp_path / "health.json").write_text(
        '{"jobs": {"crawl": {"outcome": "ok", "last_success": "2026-11-27T10:00:00Z"}}}'
    )
    names = _imported(tmp_path, "status", "--healthcheck", "--now", "2026-11-27T11:00:00Z")
    assert not names & (PIPELINE | DATABASE), sorted(names & (PIPELINE | DATABASE))


def test_sources_check_reads_the_file_without_a_database_or_a_stage(tmp_path: Path) -> None:
    (tmp_path / "sources.yaml").write_text(SOURCES)
    names = _imported(tmp_path, "sources", "check")
    assert "yaml" in names
    assert not names & (PIPELINE | DATABASE), sorted(names & (PIPELINE | DATABASE))


def test_a_crawl_never_imports_the_extractor_in_its_own_process(tmp_path: Path) -> None:
    """The page extractor (trafilatura and what it brings: 0.07 s, 7 MB) runs in the worker
    processes, whose forkserver imports it; the crawl's own process only sends them the pages.
    Their import lists would mix into -X importtime's, so the crawl's own process lists what it
    holds once done. Here it fetched an article page and stored the text extracted from it."""
    from tests.support.loopback import LoopbackServer, Response

    with LoopbackServer({}) as srv:
        rss = (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>W</title><item><title>A'
            f"</title><link>{srv.url('/a.html')}</link><description>Thin.</description></item>"
            "</channel></rss>"
        )
        story = "The harbour bridge reopened on Monday after two years of repairs. " * 12
        page = f"<html><head><title>A</title></head><body><article><p>{story}</p></article>"
        srv.routes["/feed.xml"] = Response(
            body=rss.encode(), headers={"Content-Type": "application/rss+xml"}
        )
        srv.routes["/a.html"] = Response(
            body=f"{page}</body></html>".encode(), headers={"Content-Type": "text/html"}
        )
        code = (
            "import runpy, sys\n"
            "sys.argv = ['aggregator', 'crawl', '--db', sys.argv[1]]\n"
            "try:\n    runpy.run_module('aggregator', run_name='__main__')\n"
            "except SystemExit as exit:\n    assert not exit.code, exit.code\n"
            "print('MODULES', *sorted({m.split('.')[0] for m in sys.modules}))\n"
        )
        (tmp_path / "sources.yaml").write_text(
            "settings:\n  fetch:\n    allow_private_networks: true\n"
            f"sources:\n  - id: wire\n    name: The Wire\n    url: {srv.url('/feed.xml')}\n"
        )
        proc = _python(tmp_path, "-c", code, f"sqlite:///{tmp_path / 'news.db'}")
    with sqlite3.connect(tmp_path / "news.db") as db:
        (text,) = db.execute("select text from article").fetchone()
    assert "harbour bridge reopened" in text  # the page was fetched and extracted
    names = set(proc.stdout.split("MODULES", 1)[1].split())
    assert {"aiohttp", "sqlalchemy"} <= names  # the list sees what it should
    assert "trafilatura" not in names
