"""The shipped sources.yaml: valid, varied, and documented for the editor who owns it."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pydantic import BaseModel

from aggregator.settings import FetchSettings, LLMSettings, Settings
from aggregator.sources.load import Config, Source, load_config

SOURCES_FILE = Path(__file__).resolve().parents[1] / "sources.yaml"
CATEGORIES = {"world", "politics", "business", "technology", "science", "sport", "culture"}


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(SOURCES_FILE, env={})  # env={}: the file alone, whatever the shell says


@pytest.fixture(scope="module")
def text() -> str:
    return SOURCES_FILE.read_text(encoding="utf-8")


def test_loads_with_20_to_40_sources(config: Config) -> None:
    assert 20 <= len(config.sources) <= 40
    assert config.enabled_sources == config.sources
    assert config.path == SOURCES_FILE.resolve()


def test_ids_and_urls_are_unique(config: Config) -> None:
    ids = [s.id for s in config.sources]
    assert len(ids) == len(set(ids))
    urls = [s.url.lower().rstrip("/") for s in config.sources]
    assert len(urls) == len(set(urls))


def test_urls_are_public_http_feeds(config: Config) -> None:
    for source in config.sources:
        parts = urlsplit(source.url)
        assert parts.scheme in {"http", "https"}, source.id
        assert parts.hostname and "." in parts.hostname, source.id
        assert not parts.hostname.startswith(("127.", "10.", "192.168.", "localhost")), source.id
        assert "news.google.com" not in parts.hostname, source.id  # real outlets, not proxies


def test_several_languages_and_countries(config: Config) -> None:
    languages = {s.language for s in config.sources}
    assert {"en", "de", "fr", "es"} <= languages
    assert len(languages) >= 6
    domains = {".".join((urlsplit(s.url).hostname or "").split(".")[-2:]) for s in config.sources}
    assert len(domains) >= 15  # many outlets, not one broadcaster's sections


def test_categories_cover_the_newsroom(config: Config) -> None:
    categories = {s.category for s in config.sources}
    assert categories == CATEGORIES
    for category in CATEGORIES:
        assert sum(s.category == category for s in config.sources) >= 2, category


def test_settings_are_safe_defaults(config: Config, text: str) -> None:
    settings = config.settings
    assert settings.window_hours == 24
    assert settings.fetch.allow_private_networks is False
    assert settings.llm.api_key is None  # keys belong in the environment, never in the file
    assert not settings.llm.configured  # no endpoint: the extractive summariser, no error
    assert not re.search(r"sk-[A-Za-z0-9]{10,}", text)


@pytest.mark.parametrize(
    "model",
    [Settings, FetchSettings, LLMSettings, Source],
    ids=lambda m: m.__name__,
)
def test_every_field_is_explained_in_the_file(model: type[BaseModel], text: str) -> None:
    """The editor sees every option: each field is set or named in a comment."""
    fields = set(model.model_fields) - {"fetch", "llm"}
    missing = {name for name in fields if not re.search(rf"(^|\s|#){name}(:|\s)", text, re.M)}
    assert not missing


def test_comments_show_llm_examples(text: str) -> None:
    for example in ("OpenAI", "Ollama", "vLLM", "11434/v1", "OPENAI_API_KEY"):
        assert example in text
