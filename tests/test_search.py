"""Static search with Pagefind: the index is built into each release before it goes live and
holds every story page; the search box is the pages' only script, served from the site; without
the binary the site is published all the same, with one warning and no script."""

from __future__ import annotations

import gzip
import json
import logging
import re
from pathlib import Path

import lxml.html
import pytest

from aggregator.errors import SiteWriteError
from aggregator.render.pages import render_site
from aggregator.render.search import BUNDLE, SEARCH_SCRIPT, search_binary
from tests.test_render import NOW, SETTINGS, sample

BINARY = search_binary()
needs_pagefind = pytest.mark.skipif(
    BINARY is None,
    reason="the Pagefind binary is missing: pip install 'pagefind[extended]' (a dependency)",
)


def fragments(site: Path) -> dict[str, str]:
    """The indexed pages: result URL -> the text Pagefind stored for it (its fragment files
    are gzipped JSON after a "pagefind_dcd" signature)."""
    out = {}
    for path in (site / BUNDLE / "fragment").glob("*.pf_fragment"):
        data = gzip.decompress(path.read_bytes()).removeprefix(b"pagefind_dcd")
        fragment = json.loads(data)
        out[fragment["url"]] = fragment["content"]
    return out


def html_pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if BUNDLE not in p.relative_to(site).parts)


@needs_pagefind
def test_the_index_holds_every_story_page_and_its_words(tmp_path: Path) -> None:
    site = render_site(*sample(), SETTINGS, tmp_path / "site", NOW)
    assert (site / BUNDLE / "pagefind-entry.json").is_file()
    assert (site / BUNDLE / "pagefind-ui.js").is_file()
    assert list((site / BUNDLE).glob("wasm.*.pagefind")), "the search's WebAssembly is served"
    found = fragments(site)
    assert sorted(found) == ["/stories/3f2a9c0d1e.html", "/stories/b7e4.html"]  # stories only
    assert "Traffic is limited to 30 km/h" in found["/stories/3f2a9c0d1e.html"]
    assert "Comet visible tonight" in found["/stories/b7e4.html"]


@needs_pagefind
def test_the_search_box_is_the_only_script_and_is_served_locally(tmp_path: Path) -> None:
    site = render_site(*sample(), SETTINGS, tmp_path / "site", NOW)
    script = (site / SEARCH_SCRIPT).read_text()
    assert "http" not in script  # everything it loads comes from the site itself
    for page in html_pages(site):
        doc = lxml.html.fromstring(page.read_bytes())
        scripts = doc.xpath("//script")
        assert len(scripts) == 1 and scripts[0].text is None, page  # no inline script
        src = scripts[0].get("src")
        assert src.endswith(SEARCH_SCRIPT) and not src.startswith(("http:", "https:", "//"))
        assert (page.parent / src).resolve() == (site / SEARCH_SCRIPT).resolve()
        # the box stays hidden until the script runs: without JavaScript there is none
        assert [b.get("hidden") for b in doc.xpath("//*[@data-search]")] == [""]
        policy = doc.xpath("//meta[@http-equiv='Content-Security-Policy']/@content")[0]
        assert "script-src 'self' 'wasm-unsafe-eval';" in policy
    for name in ("pagefind-ui.js", "pagefind-ui.css", "pagefind.js"):
        text = (site / BUNDLE / name).read_text()
        # no remote fonts, images, styles or scripts in Pagefind's interface (its text names
        # translators' home pages and parses URLs against example.com, which loads nothing)
        assert not re.search(r"url\(\s*[\"']?(https?:)?//|@import|import\(\s*[\"']https?:", text)


def test_without_the_binary_the_site_is_published_without_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PAGEFIND_BINARY_PATH", str(tmp_path / "no-such-pagefind"))
    with caplog.at_level(logging.WARNING):
        site = render_site(*sample(), SETTINGS, tmp_path / "site", NOW)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "Pagefind binary was not found" in warnings[0], warnings
    assert (site / "index.html").is_file() and (site / "stories" / "b7e4.html").is_file()
    assert not (site / BUNDLE).exists() and not (site / SEARCH_SCRIPT).exists()
    for page in html_pages(site):
        text = page.read_text()
        assert "<script" not in text and "script-src 'none'" in text, page


def test_a_failing_binary_leaves_the_site_published_without_an_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "pagefind"
    broken.write_text("#!/bin/sh\necho 'index exploded' >&2\nexit 3\n")
    broken.chmod(0o755)
    monkeypatch.setenv("PAGEFIND_BINARY_PATH", str(broken))
    with caplog.at_level(logging.WARNING):
        site = render_site(*sample(), SETTINGS, tmp_path / "site", NOW)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "index exploded" in warnings[0], warnings
    assert (site / "index.html").is_file() and not (site / BUNDLE).exists()


def test_search_off_in_settings_renders_no_script(tmp_path: Path) -> None:
    settings = SETTINGS.model_copy(update={"search": False})
    site = render_site(*sample(), settings, tmp_path / "site", NOW, search=settings.search)
    assert not (site / BUNDLE).exists()
    assert all("<script" not in p.read_text() for p in html_pages(site))


def test_a_crash_while_indexing_keeps_the_previous_site(tmp_path: Path) -> None:
    from aggregator.render.publish import publish

    out = tmp_path / "site"
    publish({"index.html": b"old"}, out)

    def crash(release: Path) -> None:
        (release / BUNDLE).mkdir()
        (release / BUNDLE / "half.pf_index").write_bytes(b"\x1f")
        raise OSError(28, "No space left on device")

    with pytest.raises(SiteWriteError, match="No space left on device; the previous site stays"):
        publish({"index.html": b"new"}, out, prepare=crash)
    assert (out / "index.html").read_bytes() == b"old"
    assert len(list((tmp_path / ".site.releases").iterdir())) == 1  # the half-built one is gone
