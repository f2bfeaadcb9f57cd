"""`aggregator status` and `aggregator crawl` output, on real crawls served from 127.0.0.1."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text

from aggregator.cli.main import main
from aggregator.crawl.crawl import crawl
from aggregator.records import FetchResult, FetchStatus
from aggregator.sources.load import load_config
from aggregator.store.storage import Storage
from tests.support.loopback import LoopbackServer, Request, Response

FIXTURES = Path(__file__).parent / "fixtures" / "crawl"
NOW = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
RSS = {"Content-Type": "application/rss+xml; charset=utf-8"}


def _feed(srv: LoopbackServer, name: str = "news.rss") -> bytes:
    return (FIXTURES / name).read_bytes().replace(b"{base}", srv.url("").encode())


def _write_config(tmp_path: Path, sources: list[dict[str, Any]]) -> Path:
    lines = ["settings:", f"  data_dir: {tmp_path / 'data'}", "sources:"]
    for s in sources:
        lines.append(f"  - id: {s['id']}")
        for key, value in s.items():
            if key != "id":
                lines.append(f"    {key}: {json.dumps(value)}")
    path = tmp_path / "sources.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def test_status_json_reports_every_state(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def etagged(req: Request) -> Response:
        if req.headers.get("If-None-Match") == '"v1"':
            return Response(304)
        atom = {"Content-Type": "application/atom+xml", "ETag": '"v1"'}
        return Response(body=_feed(srv, "sport.atom"), headers=atom)

    with LoopbackServer() as srv:
        srv.routes.update(
            {
                "/ok.rss": Response(body=_feed(srv), headers=RSS),
                "/etag.rss": etagged,
                "/broken": Response(500, b"oops"),
                "/busy": Response(429, headers={"Retry-After": "7200"}),
                "/gone": Response(410),
            }
        )
        specs = [
            {"id": "ok", "name": "OK", "url": srv.url("/ok.rss")},
            {"id": "nm", "name": "Not modified", "url": srv.url("/etag.rss")},
            {"id": "failing", "name": "Failing", "url": srv.url("/broken"), "interval": 5},
            {"id": "waiting", "name": "Backing off", "url": srv.url("/busy")},
            {"id": "gone", "name": "Gone", "url": srv.url("/gone")},
            {"id": "off", "name": "Off", "url": srv.url("/ok.rss?x"), "enabled": False},
            {"id": "new", "name": "New", "url": srv.url("/never")},
        ]
        cfg = _write_config(tmp_path, specs)
        config = load_config(cfg)
        crawled = [s for s in config.sources if s.id in {"ok", "nm", "failing", "waiting", "gone"}]
        with Storage(db_url) as storage:
            crawl(config, storage, now=NOW - timedelta(minutes=30), sources=crawled)
            crawl(config, storage, now=NOW, sources=[config.sources[1]])  # the 304
            in_window = storage.articles(since=NOW - timedelta(hours=24), until=NOW)
        at = NOW + timedelta(minutes=1)
        assert main(["status", "--json", "--config", str(cfg), "--db", db_url,
                     "--now", _iso(at)]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert report["generated"] == _iso(at)
    rows = {r["id"]: r for r in report["sources"]}
    assert list(rows) == [s["id"] for s in specs]  # every source, in file order
    assert {k: r["state"] for k, r in rows.items()} == {
        "ok": "ok",
        "nm": "not modified",
        "failing": "failing",
        "waiting": "backing off",
        "gone": "gone",
        "off": "disabled",
        "new": "never fetched",
    }
    fields = {"id", "name", "url", "state", "last_success", "last_fetched", "last_error",
              "consecutive_failures", "next_fetch", "articles_24h"}  # fmt: skip
    assert all(set(row) == fields for row in rows.values())
    earlier = _iso(NOW - timedelta(minutes=30))
    ok, nm = rows["ok"], rows["nm"]
    assert (ok["last_success"], ok["last_error"], ok["consecutive_failures"]) == (earlier, None, 0)
    assert ok["next_fetch"] == _iso(NOW)
    ok_count = sum(1 for a in in_window if a.source_id == "ok")
    assert ok["articles_24h"] == ok_count == 4
    assert nm["last_success"] == _iso(NOW) and nm["articles_24h"] == 2
    failing = rows["failing"]
    assert failing["last_error"] == "HTTP 500 Internal Server Error"
    assert failing["consecutive_failures"] == 1 and failing["last_success"] is None
    assert failing["articles_24h"] == 0
    waiting = rows["waiting"]
    assert waiting["next_fetch"] == _iso(NOW + timedelta(minutes=90))
    assert waiting["last_error"] == "HTTP 429 Too Many Requests (retry after 7200 s)"
    gone = rows["gone"]
    assert gone["next_fetch"] is None and gone["last_error"].startswith("HTTP 410 Gone")
    assert rows["new"]["last_fetched"] is None and rows["new"]["next_fetch"] is None


def test_status_table_and_clear(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = db_url
    with LoopbackServer({"/gone": Response(410)}) as srv:
        cfg = _write_config(tmp_path, [{"id": "old", "name": "Old", "url": srv.url("/gone")}])
        assert main(["crawl", "--config", str(cfg), "--db", db]) == 1  # every source failed
        _, err = capsys.readouterr()
        assert "old: HTTP 410 Gone; not fetched again until its URL changes" in err
        assert main(["crawl", "--config", str(cfg), "--db", db, "--force"]) == 0
        out, err = capsys.readouterr()
        assert "old: gone: " in err and "aggregator status --clear old" in err
        assert len(srv.requests) == 1
        assert main(["status", "--config", str(cfg), "--db", db]) == 0
        out, _ = capsys.readouterr()
        assert "old" in out and "gone" in out and "never" in out and "HTTP 410 Gone" in out
        assert main(["status", "--config", str(cfg), "--db", db, "--clear", "old"]) == 0
        out, err = capsys.readouterr()
        assert "old: failures, waits and the gone flag cleared" in err
        assert "gone" not in out.replace("the gone flag", "")
        assert main(["crawl", "--config", str(cfg), "--db", db]) == 1
        assert len(srv.requests) == 2  # fetched again after the flag was cleared
        assert main(["status", "--config", str(cfg), "--db", db, "--clear", "nope"]) == 2
        assert "no source 'nope'" in capsys.readouterr().err


def test_crawl_prints_problems_then_a_summary_table(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = db_url
    with LoopbackServer() as srv:
        srv.routes["/ok.rss"] = Response(body=_feed(srv), headers=RSS)
        cfg = _write_config(
            tmp_path,
            [
                {"id": "good", "name": "Good", "url": srv.url("/ok.rss")},
                {"id": "bad", "name": "Bad", "url": srv.url("/missing")},
            ],
        )
        assert main(["crawl", "--config", str(cfg), "--db", db]) == 0
        out, err = capsys.readouterr()
        assert err.strip() == "bad: HTTP 404 Not Found"
        assert "good" not in err
        lines = out.splitlines()
        header = next(line for line in lines if "not modified" in line)
        for name in ("sources", "fetched", "skipped", "failed", "new articles"):
            assert name in header
        values = lines[lines.index(header) + 2].replace("│", " ").split()
        assert values == ["2", "1", "0", "0", "1", "4"]
        assert "\x1b[" not in out  # no colour codes or progress bar when not a terminal

        # a second crawl right away: both skipped, nothing fetched, nothing is a problem
        assert main(["crawl", "--config", str(cfg), "--db", db]) == 0
        out, err = capsys.readouterr()
        assert err == ""
        lines = out.splitlines()
        header = next(line for line in lines if "not modified" in line)
        assert lines[lines.index(header) + 2].replace("│", " ").split() == [
            "2", "0", "0", "2", "0", "0"
        ]  # fmt: skip
        assert main(["crawl", "--config", str(cfg), "--db", db, "--force"]) == 0
        assert len([r for r in srv.requests if r.path == "/ok.rss"]) == 2


OLD_SOURCE_STATE = """
CREATE TABLE source_state (
    source_id VARCHAR(64) NOT NULL PRIMARY KEY,
    etag TEXT,
    last_modified TEXT,
    last_fetched {ts},
    last_success {ts},
    last_status VARCHAR(32),
    last_error TEXT,
    consecutive_failures INTEGER NOT NULL,
    articles_total INTEGER NOT NULL
)
"""


def test_an_older_database_gets_the_new_columns(db_url: str) -> None:
    """The first release's source_state table: Storage adds the missing columns, keeps rows."""
    from sqlalchemy import create_engine

    engine = create_engine(db_url)
    ts = "DATETIME" if db_url.startswith("sqlite") else "TIMESTAMP WITHOUT TIME ZONE"
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS source_state"))
        conn.execute(text(OLD_SOURCE_STATE.format(ts=ts)))
        conn.execute(
            text(
                "INSERT INTO source_state VALUES ('bbc', '\"e1\"', NULL, '2025-07-01 10:00:00', "
                "'2025-07-01 10:00:00', 'ok', NULL, 0, 12)"
            )
        )
    engine.dispose()
    for _ in range(2):  # opening again finds nothing to add
        with Storage(db_url) as storage:
            columns = {c["name"] for c in inspect(storage.engine).get_columns("source_state")}
            state = storage.fetch_state("bbc")
            assert {"url", "next_fetch", "gone_url", "feed_ttl", "last_http_status"} <= columns
            assert state.etag == '"e1"' and state.articles_total == 12
            assert state.next_fetch is None and state.url is None
    with Storage(db_url) as storage:
        result = FetchResult(url="u", status=FetchStatus.ERROR, error="HTTP 410 Gone",
                             http_status=410)  # fmt: skip
        storage.record_fetch("bbc", result, NOW, url="https://bbc.example/rss",
                             next_fetch=NOW + timedelta(hours=1), gone=True)  # fmt: skip
        state = storage.fetch_state("bbc")
    assert state.gone_at("https://bbc.example/rss") and state.last_http_status == 410
    assert state.next_fetch == NOW + timedelta(hours=1)
    assert state.for_url("https://bbc.example/new").etag is None


def test_a_failing_source_is_named_once_on_stderr(tmp_path: Path, db_url: str) -> None:
    """A real process (logging configured as users see it): the problem line, not a log echo."""
    import os
    import subprocess
    import sys

    with LoopbackServer() as srv:
        cfg = _write_config(tmp_path, [{"id": "bad", "name": "Bad", "url": srv.url("/missing")}])
        env = {**os.environ, "AGGREGATOR_ALLOW_PRIVATE_NETWORKS": "1"}
        command = [sys.executable, "-m", "aggregator.cli", "crawl", "--config", str(cfg),
                   "--db", db_url]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        verbose = subprocess.run([*command, "--force", "-v"], env=env, capture_output=True,
                                 text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1  # every source failed
    assert done.stderr.count("HTTP 404") == 1, done.stderr
    assert "bad: HTTP 404 Not Found" in done.stderr
    assert verbose.stderr.count("HTTP 404") == 2  # -v adds the log line with the URL
