"""sources.yaml values that used to pass and mean trouble: each refused with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.cli.main import main
from aggregator.errors import ConfigError
from aggregator.sources.edit import NewSource, SourcesDocument
from aggregator.sources.load import load_config, parse_sources

SOURCE = "  - id: one\n    name: One\n    url: https://one.example/feed\n"


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_sources(text, "s.yaml", require_sources=True)
    return info.value.problems


def test_a_space_in_the_host_is_not_a_url() -> None:
    [problem] = problems(SOURCE.replace("one.example", "exa mple.org").join(["sources:\n", ""]))
    assert problem.startswith("s.yaml:4:5: sources[0].url: ")


def test_a_space_in_the_query_is_a_sloppy_but_real_feed_url() -> None:
    text = "sources:\n" + SOURCE.replace("/feed", "/rss?type=News Item")
    assert parse_sources(text).sources[0].url == "https://one.example/rss?type=News%20Item"


@pytest.mark.parametrize("text", ["sources: []\n", "settings:\n  title: T\n"])
def test_no_source_at_all_is_an_empty_digest_for_ever(text: str) -> None:
    """Refused where a command crawls; a file of settings alone serves ingest, cluster, render."""
    [problem] = problems(text)
    assert problem.startswith("s.yaml:1:1: sources: no source is listed")
    assert parse_sources(text).sources == []


def test_an_empty_file_can_still_get_its_first_source(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text("sources: []\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no source is listed"):
        load_config(path, require_sources=True)
    doc = SourcesDocument(path)
    doc.add(NewSource(url="https://one.example/feed", name="One"))
    doc.save()
    assert [s.id for s in load_config(path, require_sources=True).sources] == ["one"]


@pytest.mark.parametrize(
    ("setting", "line"),
    [("llm:\n    max_retries: 1e12", 3), ("fetch:\n    concurrency: 1000000", 3),
     ("window_hours: 1e9", 2), ("language: ''", 2), ("language: english!", 2)],
)  # fmt: skip
def test_absurd_settings_are_refused(setting: str, line: int) -> None:
    [problem] = problems(f"settings:\n  {setting}\nsources:\n{SOURCE}")
    assert problem.startswith(f"s.yaml:{line}:")


def test_an_empty_language_is_refused_and_a_real_one_kept() -> None:
    [problem] = problems("sources:\n" + SOURCE + "    language: ''\n")
    assert problem.startswith("s.yaml:5:5: sources[0].language: ") and "language tag" in problem
    assert parse_sources("sources:\n" + SOURCE + "    language: no\n").sources[0].language == "no"


def test_a_control_character_is_reported_at_its_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_bytes(("sources:\n" + SOURCE.replace("name: One", 'name: "Oné\x01"')).encode())
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [problem] = info.value.problems
    assert problem.startswith(f"{path}:3:15: character U+0001 is not allowed")


@pytest.mark.parametrize("command", [["sources", "check"], ["crawl"], ["run"], ["schedule"]])
def test_commands_that_crawl_refuse_a_file_without_sources(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text("settings:\n  title: T\nsources: []\n", encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'news.db'}"
    assert main([*command, "--config", str(path), "--db", db]) == 2
    assert f"error: {path}:3:1: sources: no source is listed" in capsys.readouterr().err
    assert not (tmp_path / "news.db").exists()  # refused before anything was opened


def test_a_digest_of_ingested_articles_needs_no_source(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text("settings:\n  title: T\nsources: []\n", encoding="utf-8")
    db = db_url
    out = tmp_path / "site"
    assert main(["run", "--no-crawl", "--config", str(path), "--db", db, "--out", str(out)]) == 0
    assert (out / "index.html").exists()
