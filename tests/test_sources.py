"""sources.yaml validation: every error names the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.config import Settings, apply_environment
from aggregator.sources import ConfigError, load_config, parse_sources

GOOD = """\
settings:
  title: Test news
  window_hours: 12
  llm:
    model: llama3.1
sources:
  - id: one
    name: One
    url: https://one.example/feed.xml
    category: world
  - id: two
    name: Two
    url: https://two.example/rss
    weight: 2.5
    full_text: true
    enabled: false
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_sources(text, "s.yaml")
    return info.value.problems


def test_good_file_parses_with_defaults() -> None:
    parsed = parse_sources(GOOD)
    assert parsed.settings.title == "Test news"
    assert parsed.settings.window_hours == 12
    assert parsed.settings.llm.model == "llama3.1"
    assert parsed.settings.max_stories == Settings().max_stories
    one, two = parsed.sources
    assert (one.weight, one.enabled, one.full_text, one.category) == (1.0, True, False, "world")
    assert (two.weight, two.enabled, two.full_text) == (2.5, False, True)


def test_unknown_field_names_line_and_path() -> None:
    text = GOOD.replace("    category: world\n", "    categroy: world\n")
    [problem] = _problems(text)
    assert problem.startswith("s.yaml:10:5: sources[0].categroy: unknown field")


def test_wrong_type_names_line() -> None:
    [problem] = _problems(GOOD.replace("weight: 2.5", "weight: heavy"))
    assert problem.startswith("s.yaml:14:")
    assert "sources[1].weight" in problem


def test_yaml_11_boolean_is_not_silently_false() -> None:
    [problem] = _problems(GOOD.replace("enabled: false", "enabled: no"))
    assert "sources[1].enabled" in problem
    assert "write true or false" in problem


def test_missing_url_and_bad_scheme() -> None:
    text = GOOD.replace("    url: https://one.example/feed.xml\n", "").replace(
        "https://two.example/rss", "ftp://two.example/rss"
    )
    problems = _problems(text)
    assert any("sources[0].url: Field required" in p for p in problems)
    assert any("sources[1].url" in p and "http" in p for p in problems)


def test_duplicate_url_names_both_lines() -> None:
    text = GOOD.replace("https://two.example/rss", "https://ONE.example/feed.xml")
    [problem] = _problems(text)
    assert problem.startswith("s.yaml:13:")
    assert "first given on line 9" in problem


def test_duplicate_key_is_an_error() -> None:
    [problem] = _problems(GOOD.replace("    weight: 2.5\n", "    weight: 2.5\n    weight: 3\n"))
    assert problem.startswith("s.yaml:15:")
    assert "duplicate key" in problem


def test_syntax_error_has_line_and_column() -> None:
    [problem] = _problems("sources:\n  - id: [a\n")
    assert problem.startswith("s.yaml:3:")
    assert "syntax" in problem


def test_empty_file_is_an_error() -> None:
    assert "empty" in _problems("")[0]
    assert "no settings or sources" in _problems("# only a comment\n")[0]


def test_tabs_non_utf8_and_missing_file(tmp_path: Path) -> None:
    tabbed = tmp_path / "tab.yaml"
    tabbed.write_text("sources:\n\t- id: x\n")
    with pytest.raises(ConfigError, match=r"tab.yaml:2:1: tab used for indentation"):
        load_config(tabbed)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"settings:\n  title: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin.yaml:2: the file is not UTF-8"):
        load_config(latin)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(GOOD)
    env = {
        "AGGREGATOR_DB_URL": "postgresql+psycopg://u@h/db",
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "AGGREGATOR_ALLOW_PRIVATE_NETWORKS": "1",
    }
    config = load_config(path, env=env)
    assert config.settings.db_url == "postgresql+psycopg://u@h/db"
    assert config.settings.llm.configured
    assert config.settings.llm.base_url == "http://127.0.0.1:9/v1"
    assert config.settings.fetch.allow_private_networks
    assert config.base_dir == tmp_path.resolve()
    assert [s.id for s in config.enabled_sources] == ["one"]


def test_default_db_is_sqlite_under_data_dir(tmp_path: Path) -> None:
    settings = apply_environment(Settings(), env={})
    assert settings.resolved_db_url(tmp_path) == f"sqlite:///{tmp_path / 'data' / 'aggregator.db'}"
    assert not settings.llm.configured


def test_cluster_threshold_default_is_the_tuned_one() -> None:
    from aggregator.cluster import DEFAULT_THRESHOLD

    assert Settings().cluster_threshold == DEFAULT_THRESHOLD
