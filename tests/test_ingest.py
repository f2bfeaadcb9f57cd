"""`aggregator ingest`: every bad line is that line's error, never the whole file's, and what
it stores is held to the caps and date sanity a feed item is held to."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.cli.main import main
from aggregator.records import MAX_TITLE_CHARS
from aggregator.store import Storage

NOW = "2026-11-26T00:00:00Z"


def _line(i: int, **fields: object) -> bytes:
    row = {"url": f"https://wire.example/{i}", "title": f"Story {i}", **fields}
    return json.dumps(row).encode() + b"\n"


def test_a_line_that_is_not_utf8_is_that_lines_error(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        _line(1) + b'{"url": "https://wire.example/2", "title": "caf\xe9"}\n' + _line(3)
    )
    db = db_url
    assert main(["ingest", str(src), "--db", db, "--now", NOW]) == 1
    out, err = capsys.readouterr()
    assert "2 articles stored, 0 already present, 1 bad lines" in out
    assert f"{src}:line 2: not UTF-8 text (byte 48: b'\\xe9')" in err


def test_a_byte_order_mark_at_the_start_is_skipped(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\xef\xbb\xbf" + _line(1) + _line(2))
    db = db_url
    assert main(["ingest", str(src), "--db", db, "--now", NOW]) == 0
    assert "2 articles stored, 0 already present, 0 bad lines" in capsys.readouterr().out


def test_json_errors_name_the_column_once(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"url": "https://wire.example/1", "title": "a\x01b"}\n{"url": 1,,}\n')
    db = db_url
    assert main(["ingest", str(src), "--db", db, "--now", NOW]) == 1
    err = capsys.readouterr().err
    assert f"{src}:line 1: invalid JSON: Invalid control character at column 46\n" in err
    assert f"{src}:line 2: invalid JSON: Expecting property name enclosed in double quotes at " \
        "column 11\n" in err  # fmt: skip
    assert "at at" not in err


def test_ingested_articles_get_the_caps_and_date_sanity_of_feed_items(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        _line(1, title="T" * 100_000, source="S" * 5_000, text="x\x07y " * 60_000)
        + _line(2, published="1900-01-01T00:00:00Z")
        + _line(3, published="2999-01-01T00:00:00Z")
        + _line(4, published="2026-11-25T09:30:00+01:00")
        + _line(5, language="english please")
    )
    path = tmp_path / "news.db"
    assert main(["ingest", str(src), "--db", f"sqlite:///{path}", "--now", NOW]) == 1
    out, err = capsys.readouterr()
    assert "4 articles stored" in out
    assert f"{src}:line 5: 'language' is not a language tag" in err
    with Storage(f"sqlite:///{path}") as storage:
        stored = {a.url.rsplit("/", 1)[1]: a for a in storage.articles()}
    long = stored["1"]
    assert len(long.title) == MAX_TITLE_CHARS
    assert len(long.source_name) == 300
    assert len(long.text) == 100_000 and "\x07" not in long.text
    assert stored["2"].published is None  # before EARLIEST_DATE: no date, as in a feed
    assert stored["3"].published is None  # past now + FUTURE_SLACK
    assert stored["4"].published == datetime(2026, 11, 25, 8, 30, tzinfo=UTC)


def test_a_nul_in_one_line_loses_nothing_on_postgresql(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """PostgreSQL refuses NUL in text; the store drops it, so every line of the file is kept."""
    src = tmp_path / "in.jsonl"
    src.write_bytes(_line(1) + _line(2, title="Nul\u0000title", text="a\u0000b") + _line(3))
    assert main(["ingest", str(src), "--db", pg_url, "--now", NOW]) == 0
    assert "3 articles stored, 0 already present, 0 bad lines" in capsys.readouterr().out
    with Storage(pg_url) as storage:
        titles = sorted(a.title for a in storage.articles())
    assert titles == ["Nultitle", "Story 1", "Story 3"]


def test_ingest_is_refused_while_a_run_holds_the_lock(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ingest wrote beside a running crawl or clustering; it takes the run lock like them."""
    from aggregator.pipeline import run_lock
    from aggregator.sources.load import load_config

    config = tmp_path / "sources.yaml"
    config.write_text(f"settings:\n  data_dir: {tmp_path / 'data'}\nsources: []\n")
    src = tmp_path / "in.jsonl"
    src.write_bytes(_line(1))
    common = ["--config", str(config), "--db", db_url]
    with run_lock(load_config(config)):
        assert main(["ingest", str(src), *common]) == 75
    assert "another aggregator run holds" in capsys.readouterr().err
    assert main(["ingest", str(src), *common]) == 0
    assert "1 articles stored" in capsys.readouterr().out
