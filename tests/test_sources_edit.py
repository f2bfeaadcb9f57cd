"""Editing sources.yaml: appends keep every comment, the order and the layout of the rest."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from aggregator.errors import ConfigError, DuplicateSourceError, UserError
from aggregator.sources.edit import NewSource, SourcesDocument, slug, unique_id, write_atomically
from aggregator.sources.load import load_config

ROOT = Path(__file__).resolve().parents[1]

HAND_MADE = """\
# Our feeds.   Two spaces here on purpose.
settings:
    title: 'Quoted title'      # a comment after a value
    window_hours: 12

sources:
    # the wires first
    -   id: wire
        name: "The Wire"
        url: https://wire.example/rss   # keep me
        language: no                    # Norwegian, not false
    -   id: daily
        name: Daily
        url: https://daily.example/feed.xml
        enabled: false
# trailing comment
"""


def test_append_keeps_the_rest_of_the_file_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(HAND_MADE)
    doc = SourcesDocument(path)
    assert doc.add(NewSource(url="https://new.example/atom", name="New: Thing", category="x")) == (
        "new-thing"
    )
    doc.save()
    text = path.read_text()
    assert text.startswith(HAND_MADE), text
    assert text.endswith(
        "    -   id: new-thing\n"
        "        name: 'New: Thing'\n"
        "        url: https://new.example/atom\n"
        "        category: x\n"
    )
    config = load_config(path, env={})
    assert [s.id for s in config.sources] == ["wire", "daily", "new-thing"]
    assert config.sources[0].language == "no"


def test_shipped_sources_yaml_gains_only_the_new_lines(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    shutil.copy(ROOT / "sources.yaml", path)
    before = path.read_text()
    doc = SourcesDocument(path)
    doc.add(NewSource(url="https://new.example/feed", name="Über Nachrichten", language="de"))
    doc.save()
    after = path.read_text()
    assert after.startswith(before)
    assert after[len(before) :] == (
        "  - id: uber-nachrichten\n    name: Über Nachrichten\n"
        "    url: https://new.example/feed\n    language: de\n"
    )


@pytest.mark.parametrize(
    "start", ["sources: []\n", "# only a comment\n", "", "settings:\n  title: T\nsources: []\n"]
)
def test_adding_to_an_empty_list_or_file(tmp_path: Path, start: str) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(start)
    doc = SourcesDocument(path)
    doc.add(NewSource(url="https://a.example/rss", name="A"))
    doc.save()
    text = path.read_text()
    assert "  - id: a\n    name: A\n    url: https://a.example/rss\n" in text
    assert [s.url for s in load_config(path, env={}).sources] == ["https://a.example/rss"]
    assert text.startswith(start.removesuffix("sources: []\n"))


def test_a_missing_file_is_created(tmp_path: Path) -> None:
    path = tmp_path / "new.yaml"
    doc = SourcesDocument(path)
    doc.add(NewSource(url="https://a.example/rss", name="A"))
    doc.save()
    assert [s.id for s in load_config(path, env={}).sources] == ["a"]


def test_duplicates_are_refused_by_canonical_url(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(HAND_MADE)
    doc = SourcesDocument(path)
    for same in ("https://WIRE.example/rss/", "http://wire.example/rss?utm_source=x"):
        with pytest.raises(DuplicateSourceError) as info:
            doc.add(NewSource(url=same, name="Again"))
        assert info.value.existing == "wire"
    with pytest.raises(UserError, match="taken"):
        doc.add(NewSource(url="https://other.example/rss", name="x", id="daily"))
    with pytest.raises(UserError, match="lowercase"):
        doc.add(NewSource(url="https://other.example/rss", name="x", id="Bad Id"))


def test_ids_come_from_the_name_then_the_host_and_stay_unique(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(HAND_MADE)
    doc = SourcesDocument(path)
    assert doc.add(NewSource(url="https://w2.example/rss", name="The Wire")) == "the-wire"
    assert doc.add(NewSource(url="https://w3.example/rss", name="The Wire")) == "the-wire-2"
    assert doc.add(NewSource(url="https://www.nhk.or.jp/rss", name="NHKニュース")) == "nhk"
    assert doc.add(NewSource(url="https://www.asahi.com/rss", name="朝日新聞")) == "asahi-com"
    assert doc.add(NewSource(url="https://wire.example/news", name="wire")) == "wire-2"
    doc.save()
    names = {s.id: s.name for s in load_config(path, env={}).sources}
    assert names["asahi-com"] == "朝日新聞"


def test_slug_and_unique_id() -> None:
    assert slug("BBC News – World") == "bbc-news-world"
    assert slug("Ärger & Öl") == "arger-ol"
    assert len(slug("x" * 300)) == 48
    assert unique_id("a", {"a", "a-2"}) == "a-3"
    assert unique_id("x" * 48, {"x" * 48}) == "x" * 46 + "-2"


def test_a_bad_file_is_not_edited(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(HAND_MADE.replace("enabled: false", "enabled: nope"))
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=r"sources\.yaml:15:9"):
        SourcesDocument(path)
    assert path.read_bytes() == before


def test_an_edit_that_would_not_validate_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(HAND_MADE)
    doc = SourcesDocument(path)
    doc.add(NewSource(url="https://ok.example/rss", name="ok", category="c" * 61))
    doc.pending[-1]["category"] = ""  # what a bug in the editor would write
    with pytest.raises(ConfigError, match="category"):
        doc.save()
    assert path.read_text() == HAND_MADE
    assert [p.name for p in tmp_path.iterdir()] == ["sources.yaml"]  # no temporary file left


def test_write_atomically_keeps_the_mode_and_cleans_up(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("old")
    path.chmod(0o600)
    write_atomically(path, "new")
    assert path.read_text() == "new" and path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(TypeError):
        write_atomically(path, None)  # type: ignore[arg-type]
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["f.yaml"]


def test_byte_order_mark_survives(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + HAND_MADE.encode())
    doc = SourcesDocument(path)
    doc.add(NewSource(url="https://n.example/rss", name="N"))
    doc.save()
    assert path.read_bytes().startswith(b"\xef\xbb\xbf# Our feeds.")


def test_sources_before_settings_goes_through_the_round_trip_and_keeps_comments(
    tmp_path: Path,
) -> None:
    text = (
        "sources:   # the list first\n"
        "- id: a    # first\n"
        "  name: A\n"
        "  url: https://a.example/rss\n"
        "\n"
        "# settings after the list\n"
        "settings:\n"
        "  title: 'T'   # quoted\n"
    )
    path = tmp_path / "sources.yaml"
    path.write_text(text)
    doc = SourcesDocument(path)
    doc.add(NewSource(url="https://b.example/rss", name="B"))
    doc.save()
    after = path.read_text()
    assert after == (
        "sources:   # the list first\n"
        "- id: a    # first\n"
        "  name: A\n"
        "  url: https://a.example/rss\n"
        "- id: b\n"
        "  name: B\n"
        "  url: https://b.example/rss\n"
        "\n"
        "# settings after the list\n"
        "settings:\n"
        "  title: 'T'   # quoted\n"
    )
    assert load_config(path, env={}).settings.title == "T"


def test_adding_to_ten_thousand_sources_is_quick(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    lines = ["# big", "sources:"]
    for n in range(10_000):
        lines += [f"  - id: s{n}", f"    name: Source {n}", f"    url: https://s{n}.example/rss"]
    path.write_text("\n".join(lines) + "\n")
    before = path.read_text()
    started = time.perf_counter()
    doc = SourcesDocument(path)
    doc.add(NewSource(url="https://new.example/rss", name="New"))
    doc.save()
    # generous: the whole-file round trip through ruamel takes tens of seconds here
    assert time.perf_counter() - started < 10
    assert (
        path.read_text()
        == before + "  - id: new\n    name: New\n    url: https://new.example/rss\n"
    )
