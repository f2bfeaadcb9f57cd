"""The command line: help with examples, ingest/export shapes, exit codes, the run lock."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from aggregator.cli.main import build_parser, main
from aggregator.errors import RunLockedError
from aggregator.pipeline import run_lock
from aggregator.sources.load import load_config
from tests.support.loopback import LoopbackServer, Response

ROOT = Path(__file__).resolve().parents[1]


def _commands(
    parser: argparse.ArgumentParser, prefix: str = ""
) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                full = f"{prefix}{name}"
                nested = _commands(sub, full + " ")
                found.update(nested or {full: sub})
    return found


def test_every_command_has_help_with_an_example_and_is_in_the_readme() -> None:
    commands = _commands(build_parser())
    expected = {"demo", "run", "crawl", "cluster", "summarise", "render", "schedule", "ingest",
                "export", "extract", "status", "ask", "serve", "sources check", "sources add",
                "sources import-opml", "sources export-opml", "sources report", "db upgrade",
                "db current", "db prune", "db vacuum", "db backup"}  # fmt: skip
    assert set(commands) == expected
    readme = (ROOT / "README.md").read_text()
    for name, parser in commands.items():
        text = parser.format_help()
        assert parser.description, name
        assert "Example:" in text and f"aggregator {name}" in text, name
        assert f"aggregator {name}" in readme, f"{name} is not documented in README.md"


def test_window_and_now_are_accepted_everywhere_they_matter() -> None:
    parser = build_parser()
    for command in (["cluster"], ["summarise"], ["render"], ["export", "stories"], ["run"]):
        args = parser.parse_args([*command, "--window", "all", "--now", "2026-01-02T03:04:05Z"])
        assert args.window is None
        assert args.now.isoformat() == "2026-01-02T03:04:05+00:00"
        assert parser.parse_args([*command, "--window", "48"]).window == 48.0
    with pytest.raises(SystemExit):
        parser.parse_args(["cluster", "--window", "soon"])


def _write_jsonl(path: Path, rows: list[object]) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def test_ingest_reports_bad_lines_and_stores_the_rest_once(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = db_url
    src = tmp_path / "in.jsonl"
    _write_jsonl(src, [
        {"url": "https://a.example/1?utm_source=x", "title": "One", "source": "A",
         "published": "2026-11-25T10:00:00Z", "text": "Body one."},
        "{not json",
        {"title": "no url"},
        {"url": "https://b.example/2", "title": "Two", "published": "yesterday"},
        {"url": "https://b.example/3", "title": "Three", "lang": "en"},
        {"url": "https://b.example/4", "title": "Four", "language": "de"},
    ])  # fmt: skip
    assert main(["ingest", str(src), "--db", db, "--now", "2026-11-26T00:00:00Z"]) == 1
    out, err = capsys.readouterr()
    assert "2 articles stored, 0 already present, 4 bad lines" in out
    assert f"{src}:line 2: invalid JSON" in err
    assert f"{src}:line 3: 'url' is required" in err
    assert f"{src}:line 4: 'published' is not an ISO 8601 time" in err
    assert f"{src}:line 5: unknown field(s): lang" in err
    assert main(["ingest", str(src), "--db", db]) == 1
    assert "0 articles stored, 2 already present" in capsys.readouterr().out


def test_export_articles_is_the_shape_ingest_reads(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Export from either backend, ingest into SQLite: the same articles."""
    rows = [
        {"url": f"https://n.example/{i}", "title": f"T{i}", "text": f"Text {i}.",
         "source": "N", "published": f"2026-11-2{i}T08:00:00Z", "language": "en"}
        for i in range(1, 5)
    ]  # fmt: skip
    src, dumped = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write_jsonl(src, rows)
    first, second = db_url, f"sqlite:///{tmp_path / '2.db'}"
    assert main(["ingest", str(src), "--db", first]) == 0
    assert main(["export", "articles", "--window", "all", "--db", first, "-o", str(dumped)]) == 0
    exported = [json.loads(line) for line in dumped.read_text().splitlines()]
    assert exported == rows  # oldest first, same fields, same values
    assert main(["ingest", str(dumped), "--db", second]) == 0
    assert main(["export", "articles", "--window", "all", "--db", second]) == 0
    out = capsys.readouterr().out
    again = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert again == rows
    # the window counts back from --now
    assert main(["export", "articles", "--window", "30", "--now", "2026-11-24T12:00:00Z",
                 "--db", first]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert [json.loads(x)["url"] for x in out.splitlines()] == [
        "https://n.example/3",
        "https://n.example/4",
    ]


def test_bad_sources_file_exits_2_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "sources.yaml"
    bad.write_text(
        "sources:\n  - id: x\n    name: X\n    url: https://x.example/rss\n    wieght: 2\n"
    )
    assert main(["sources", "check", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:5:5: sources[0].wieght: unknown field" in err
    good = tmp_path / "good.yaml"
    good.write_text("sources:\n  - id: x\n    name: X\n    url: https://x.example/rss\n")
    assert main(["sources", "check", "--config", str(good)]) == 0
    assert "OK, 1 sources (1 enabled)" in capsys.readouterr().out


def test_a_second_run_is_refused_while_one_holds_the_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "sources.yaml"
    cfg.write_text("settings:\n  data_dir: d\nsources: []\n")
    config = load_config(cfg)
    with run_lock(config):
        with pytest.raises(RunLockedError), run_lock(config):
            pass
        assert main(["cluster", "--config", str(cfg)]) == 75  # try again later
        assert "another aggregator run holds" in capsys.readouterr().err
    assert main(["cluster", "--config", str(cfg)]) == 0  # released afterwards
    assert re.search(r"0 articles in the last 24 h -> 0 stories", capsys.readouterr().out)


FIXTURES = ROOT / "tests" / "fixtures" / "crawl"


def test_extract_a_saved_page_and_a_url(capsys: pytest.CaptureFixture[str]) -> None:
    page = FIXTURES / "swifts.html"
    assert main(["extract", str(page), "--url", "https://news.example/swifts"]) == 0
    from_file = json.loads(capsys.readouterr().out)
    assert set(from_file) == {"title", "author", "published", "language", "image", "text"}
    assert "31,200 birds" in from_file["text"] and "Most read" not in from_file["text"]
    assert from_file["author"] == "Maria Okafor"
    assert from_file["published"].startswith("2025-06-30")
    html_bytes = page.read_bytes()
    route = Response(body=html_bytes, headers={"Content-Type": "text/html"})
    with LoopbackServer({"/swifts": route}) as srv:
        assert main(["extract", srv.url("/swifts")]) == 0
        assert json.loads(capsys.readouterr().out)["text"] == from_file["text"]
        assert main(["extract", srv.url("/missing")]) == 2
        assert "HTTP 404" in capsys.readouterr().err
    assert main(["extract", str(FIXTURES / "nope.html")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_run_window_all_digests_every_stored_article(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """ "all" reached run_once as None, which read it as the default 24 hours."""
    db = db_url
    src = tmp_path / "in.jsonl"
    days = ("2026-11-25T20:00:00Z", "2026-11-23T20:00:00Z", "2026-11-20T20:00:00Z")
    _write_jsonl(src, [
        {"url": f"https://n.example/{i}", "title": f"Topic {word} news", "source": "N",
         "published": when}
        for i, (word, when) in enumerate(zip(("alpha", "beta", "gamma"), days, strict=True))
    ])  # fmt: skip
    assert main(["ingest", str(src), "--db", db]) == 0
    config = tmp_path / "sources.yaml"
    config.write_text(f"settings:\n  data_dir: {tmp_path}\n  min_sources: 1\n")
    common = ["--config", str(config), "--db", db, "--now", "2026-11-26T00:00:00Z"]
    site = ["--out", str(tmp_path / "site")]
    capsys.readouterr()
    assert main(["run", "--no-crawl", *common, *site]) == 0
    assert "cluster: 1 articles" in capsys.readouterr().out
    assert main(["run", "--no-crawl", "--window", "all", *common, *site]) == 0
    assert "cluster: 3 articles" in capsys.readouterr().out


def test_crawl_and_ingest_take_no_window() -> None:
    parser = build_parser()
    for command in (["crawl"], ["ingest", "-"]):
        assert parser.parse_args([*command, "--now", "2026-01-02T03:04:05Z"]).now is not None
        with pytest.raises(SystemExit):
            parser.parse_args([*command, "--window", "24"])
