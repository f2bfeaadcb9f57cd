"""`aggregator sources report`: per source, numbers from what is stored, on a fixture week whose
report was worked out by hand (tests/fixtures/report), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aggregator.cli.main import main
from aggregator.records import Article, FetchResult, FetchStatus, Story
from aggregator.report import sources_report
from aggregator.sources.load import load_config
from aggregator.store.storage import Storage
from aggregator.times import parse_iso

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "report"
WEEK: dict[str, Any] = json.loads((FIXTURES / "newsroom.json").read_text())
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "newsroom.expected.json").read_text())
NOW = parse_iso(WEEK["now"])


def _sources_yaml(path: Path) -> Path:
    lines = ["settings:", f"  min_sources: {WEEK['min_sources']}", "sources:"]
    for source in WEEK["sources"]:
        lines += [
            f"  - id: {source['id']}",
            f"    name: {source['id'].title()}",
            f"    url: https://{source['id']}.example/feed.xml",
        ]
        if source.get("enabled") is False:
            lines.append("    enabled: false")
    path.write_text("\n".join(lines) + "\n")
    return path


def _store_the_week(storage: Storage) -> None:
    articles, stories = [], {}
    for row in WEEK["articles"]:
        when = NOW - timedelta(hours=row["hours_ago"])
        article = Article(
            id=row["id"],
            url=f"https://{row['source']}.example/{row['id']}",
            title=row["title"],
            source_id=row["source"],
            source_name=row["source"].title(),
            published=when,
            fetched_at=when,
        )
        articles.append(article)
        if row["story"]:
            stories.setdefault(row["story"], []).append(article)
    storage.add_articles(articles)
    storage.save_stories(
        Story(
            id=name,
            article_ids=tuple(a.id for a in sorted(members, key=lambda a: a.timestamp)),
            title=members[0].title,
            first_seen=min(a.timestamp for a in members),
            updated=max(a.timestamp for a in members),
        )
        for name, members in stories.items()
    )
    for source in ("wire", "post", "echo", "herald", "lonely"):
        _fetched(storage, source, NOW - timedelta(hours=1), NOW + timedelta(minutes=29))
    _fetched(storage, "sleepy", NOW - timedelta(hours=72), NOW - timedelta(hours=71))
    for hours in (6, 4, 2):  # three failures in a row, the next try in 2 h
        failed = FetchResult(
            url="https://broken.example/feed.xml",
            status=FetchStatus.ERROR,
            http_status=500,
            error="HTTP 500",
        )
        storage.record_fetch(
            "broken",
            failed,
            NOW - timedelta(hours=hours),
            url="https://broken.example/feed.xml",
            next_fetch=NOW + timedelta(hours=2),
        )


def _fetched(storage: Storage, source: str, when: datetime, next_fetch: datetime) -> None:
    url = f"https://{source}.example/feed.xml"
    ok = FetchResult(url=url, status=FetchStatus.OK, http_status=200)
    storage.record_fetch(source, ok, when, url=url, next_fetch=next_fetch)


def test_the_report_has_the_hand_checked_numbers(storage: Storage, tmp_path: Path) -> None:
    config = load_config(_sources_yaml(tmp_path / "sources.yaml"))
    _store_the_week(storage)
    report = sources_report(config, storage, NOW, days=7)
    assert report.since == NOW - timedelta(days=7) and report.min_sources == 2
    assert [line.id for line in report.sources] == EXPECTED["order"]
    for line in report.sources:
        expected = EXPECTED["sources"][line.id]
        got = {key: getattr(line, key) for key in expected if key != "worked_out"}
        assert got == {k: v for k, v in expected.items() if k != "worked_out"}, line.id
    states = {line.id: line.state for line in report.sources}
    assert states["wire"] == "ok" and states["sleepy"] == "ok"


def test_the_period_counts_back_from_now(storage: Storage, tmp_path: Path) -> None:
    config = load_config(_sources_yaml(tmp_path / "sources.yaml"))
    _store_the_week(storage)
    day = {line.id: line for line in sources_report(config, storage, NOW, days=1).sources}
    # the last 24 h: wire-1, -3, -4, -5 (bridge, strike, port, museum); wire-2 (30 h) and
    # wire-6 (40 h) fall out, and with them budget and storm, two of its three first reports
    line = day["wire"]
    assert (line.articles, line.hot, line.shared, line.first) == (4, 3, 3, 1)
    assert line.verdict == "keep"
    assert day["lonely"].articles == 0 and day["lonely"].verdict == "fix"


def test_the_command_prints_a_table_or_json(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _sources_yaml(tmp_path / "sources.yaml")
    db = db_url
    with Storage(db) as storage:
        _store_the_week(storage)
    args = ["sources", "report", "--config", str(cfg), "--db", db, "--now", WEEK["now"]]
    assert main([*args, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["since"] == "2026-11-20T12:00:00Z" and printed["until"] == WEEK["now"]
    assert [s["id"] for s in printed["sources"]] == EXPECTED["order"]
    echo = next(s for s in printed["sources"] if s["id"] == "echo")
    assert (echo["repeats"], echo["median_delay_hours"], echo["verdict"]) == (4, 2.5, "drop")
    assert main(args) == 0  # a table of the last 7 days (the default)
    table = capsys.readouterr().out
    assert "sources over the 7 days to 2026-11-27 12:00 UTC (hot: 2+ sources)" in table
    rows = [line for line in table.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == EXPECTED["order"]
    # over 14 days post-old (10 days ago) is post's too: its first report of the museum story
    assert main([*args, "--days", "14", "--json"]) == 0
    fortnight = json.loads(capsys.readouterr().out)
    post = next(s for s in fortnight["sources"] if s["id"] == "post")
    assert (post["articles"], post["hot"], post["shared"], post["first"]) == (3, 3, 3, 2)
