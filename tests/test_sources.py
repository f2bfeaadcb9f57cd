"""sources.yaml validation: every error names the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.errors import ConfigError
from aggregator.settings import Settings, apply_environment
from aggregator.sources.load import load_config, parse_sources

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


def test_cluster_threshold_defaults_to_the_methods_tuned_one() -> None:
    from aggregator.settings import ClusterParams

    assert Settings().cluster_threshold is None  # cluster_articles then uses its own default
    assert Settings().cluster_embedder == "none"
    assert 0 < ClusterParams().tfidf_threshold < 1


def test_time_discount_settings_reach_the_clustering() -> None:
    from aggregator.pipeline import time_discount
    from aggregator.settings import TimeDiscount

    assert time_discount(Settings()) == TimeDiscount()  # the measured defaults
    settings = parse_sources(
        "settings:\n  cluster_time_grace_hours: 2\n  cluster_time_scale_hours: 24\n"
        "  cluster_time_floor: 0.5\nsources: []\n"
    ).settings
    assert time_discount(settings) == TimeDiscount(grace_hours=2, scale_hours=24, floor=0.5)
    assert time_discount(Settings(cluster_time_scale_hours=0)) is None  # 0: time ignored
    with pytest.raises(ConfigError, match="cluster_time_floor"):
        parse_sources("settings:\n  cluster_time_floor: 0\nsources: []\n")


# -- RELIABILITY 22-25: every way a hand-edited file goes wrong names its line ------------------


def test_duplicate_key_names_both_lines() -> None:
    text = GOOD.replace("    weight: 2.5\n", "    weight: 2.5\n    weight: 3\n")
    [problem] = _problems(text)
    assert problem.startswith("s.yaml:15:5: duplicate key 'weight'")
    assert "also given on line 14" in problem


def test_duplicate_url_after_canonical_normalisation() -> None:
    # scheme, host case, default port, tracking parameters, trailing slash: still the same feed
    one = "https://one.example/feed.xml?utm_source=x"
    text = GOOD.replace("https://one.example/feed.xml", one).replace(
        "https://two.example/rss", "http://ONE.example:80/feed.xml/"
    )
    [problem] = _problems(text)
    assert problem.startswith("s.yaml:13:") and "first given on line 9" in problem


def test_duplicate_id_names_both_lines() -> None:
    [problem] = _problems(GOOD.replace("id: two", "id: one"))
    assert (
        problem.startswith("s.yaml:11:") and "duplicate id 'one', first given on line 7" in problem
    )


@pytest.mark.parametrize("word", ["no", "NO", "off", "y", "Yes", "ON", "n"])
def test_yaml_11_words_in_boolean_fields_are_errors_with_a_hint(word: str) -> None:
    [problem] = _problems(GOOD.replace("full_text: true", f"full_text: {word}"))
    assert problem.startswith("s.yaml:15:5: sources[1].full_text:")
    assert "write true or false" in problem


def test_yaml_11_words_in_lax_settings_booleans_are_errors_too() -> None:
    # Settings' booleans are lax (pydantic would read "no" as False): we refuse the word anyway.
    text = GOOD.replace("  llm:\n", "  fetch:\n    allow_private_networks: yes\n  llm:\n")
    [problem] = _problems(text)
    assert problem.startswith("s.yaml:5:5: settings.fetch.allow_private_networks: 'yes'")
    assert "write true or false" in problem


def test_yaml_11_words_in_string_fields_stay_strings() -> None:
    # YAML 1.2: `language: no` is Norwegian, `name: off` is a name; neither becomes False.
    text = GOOD.replace("    category: world\n", "    category: world\n    language: no\n")
    text = text.replace("name: Two", "name: off")
    parsed = parse_sources(text)
    assert parsed.sources[0].language == "no"
    assert parsed.sources[1].name == "off"


def test_a_number_where_text_belongs_says_to_quote_it() -> None:
    [problem] = _problems(GOOD.replace("name: One", "name: 1984"))
    assert problem.startswith("s.yaml:8:5: sources[0].name:")
    assert "put it in quotes" in problem
    assert parse_sources(GOOD.replace("name: One", 'name: "1984"')).sources[0].name == "1984"


@pytest.mark.parametrize(
    ("tagged", "column"),
    [
        ("name: !!python/object/apply:os.system [echo hi]", 11),
        ("name: !!python/name:os.system ''", 11),
        ("name: !custom x", 11),
        ("name: !!binary aGVsbG8=", 11),
    ],
)
def test_unsafe_and_custom_tags_are_rejected_with_line_and_column(tagged: str, column: int) -> None:
    [problem] = _problems(GOOD.replace("name: One", tagged))
    assert problem.startswith(f"s.yaml:8:{column}: the YAML tag")
    assert "not allowed" in problem


def test_core_tags_are_fine() -> None:
    parsed = parse_sources(GOOD.replace("name: One", "name: !!str 2024"))
    assert parsed.sources[0].name == "2024"


def test_aliases_are_refused() -> None:
    text = GOOD.replace("category: world", "category: &c world").replace(
        "weight: 2.5", "weight: 2.5\n    category: *c"
    )
    [problem] = _problems(text)
    assert problem.startswith("s.yaml:15:15: aliases")


def test_a_second_document_is_refused() -> None:
    [problem] = _problems(GOOD + "---\nsources: []\n")
    assert problem.startswith("s.yaml:17:1:") and "second YAML document" in problem


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sources:\n", "s.yaml:1:1: sources: expected a list of sources"),
        ("sources: https://x.example/rss\n", "got str"),
        ("sources:\n  id: x\n", "got dict"),
        ("- id: x\n", "s.yaml:1:1: expected a mapping"),
        ("   \n\n", "the file is empty"),
    ],
)
def test_shapes_that_are_not_a_sources_file(text: str, expected: str) -> None:
    [problem] = _problems(text)
    assert expected in problem


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert [s.id for s in load_config(path, env={}).sources] == ["one", "two"]


def test_tab_after_a_key_is_not_indentation() -> None:
    assert parse_sources(GOOD.replace("name: One", "name:\tOne")).sources[0].name == "One"


def test_yaml_1_2_scalars() -> None:
    text = GOOD.replace("weight: 2.5", "weight: 0x2").replace(
        "window_hours: 12", "window_hours: 1e1"
    )
    parsed = parse_sources(text)
    assert parsed.sources[1].weight == 2.0
    assert parsed.settings.window_hours == 10.0


def test_a_bad_file_stops_run_before_the_site_or_database_is_touched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from aggregator.cli.main import main

    cfg = tmp_path / "sources.yaml"
    cfg.write_text("settings:\n  data_dir: data\n  output_dir: site\nsources: []\n")
    assert main(["render", "--config", str(cfg)]) == 0  # creates the database and the site
    capsys.readouterr()
    before = _snapshot(tmp_path / "data") | _snapshot(tmp_path / "site")
    assert any(name.endswith(".db") for name in before) and any(
        name.endswith("index.html") for name in before
    )
    bad_files = {
        "syntax": "settings:\n  data_dir: data\nsources: [\n",
        "tab": "settings:\n\tdata_dir: data\nsources: []\n",
        "tag": "settings:\n  data_dir: !!python/object:os.system x\nsources: []\n",
        "empty": "",
    }
    for kind, text in bad_files.items():
        cfg.write_text(text)
        assert main(["run", "--config", str(cfg)]) == 2, kind
        err = capsys.readouterr().err
        assert f"error: {cfg}" in err, (kind, err)
        after = _snapshot(tmp_path / "data") | _snapshot(tmp_path / "site")
        assert after == before, kind


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_ten_thousand_real_sources_load(shared_data: Path, tmp_path: Path) -> None:
    """Kagi Kite's feed list, topped up to 10,000: it loads (the 2 s figure is a benchmark)."""
    import time

    from tests.support.source_lists import big_sources_yaml

    path = tmp_path / "sources.yaml"
    path.write_text(big_sources_yaml(lists=shared_data / "source_lists"), encoding="utf-8")
    started = time.perf_counter()
    config = load_config(path, env={})
    assert time.perf_counter() - started < 10  # generous: a protection against going quadratic
    assert len(config.sources) == 10_000
    assert len({s.id for s in config.sources}) == 10_000
    # an error at the end of a big file still names its line
    text = path.read_text(encoding="utf-8") + "  - id: late\n    name: Late\n    url: ftp://x/\n"
    lines = text.count("\n")
    with pytest.raises(ConfigError) as info:
        parse_sources(text, "big.yaml")
    assert info.value.problems[0].startswith(f"big.yaml:{lines}:5: sources[10000].url")


@pytest.mark.parametrize(
    "url",
    [
        "https://A.example:443/x/",
        "http://a.example:443/x",
        "HTTP://a.EXAMPLE./x/",
        "https://u:p@a.example/x",
        "https://a.example",
        "https://a.example:99999/x",
        "https://a.example/x?utm_source=y&b=2",
        "https://a.example/%7Euser/feed",
    ],
)
def test_url_key_shortcut_agrees_with_canonical_url(url: str) -> None:
    from urllib.parse import urlsplit

    from aggregator.sources.load import url_key
    from aggregator.urls import canonical_url

    reference = urlsplit(canonical_url(url))
    assert url_key(url) == f"{reference.netloc}{reference.path.rstrip('/')}?{reference.query}"
