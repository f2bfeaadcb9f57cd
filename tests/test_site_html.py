"""Every page and the style sheet pass the Nu Html Checker (vnu.jar, the W3C validator's engine)
without errors: the demo's site, a Chinese one and a hostile one, all in one run of the checker."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.site_tools import nu_check, require_vnu, site_files, write_site
from tests.support.sites import chinese_site, hostile_site

SITES = ("demo", "chinese", "hostile")
BROKEN = {
    "broken.html": b'<!DOCTYPE html><html lang="en"><head><title>x</title></head>'
    b'<body><p id="a">one</p><p id="a">two</div></body></html>',
    "broken.css": b"p { color: notacolor; }\n",
}


@pytest.fixture(scope="session")
def site_pages(demo_site: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Each site's pages and style sheet on disk."""
    require_vnu()  # before the demo is built for nothing
    roots = {
        "demo": demo_site,
        "chinese": write_site(chinese_site(), tmp_path_factory.mktemp("chinese")),
        "hostile": write_site(hostile_site(), tmp_path_factory.mktemp("hostile")),
    }
    pages = {
        name: [(root / p).resolve() for p in site_files(root) if p.endswith((".html", ".css"))]
        for name, root in roots.items()
    }
    broken = write_site(BROKEN, tmp_path_factory.mktemp("broken"))
    pages["broken"] = [(broken / name).resolve() for name in BROKEN]  # the checker's control
    return pages


@pytest.fixture(scope="session")
def nu_errors(site_pages: dict[str, list[Path]]) -> dict[Path, list[str]]:
    """Every site's files in one run of the checker."""
    return nu_check([p for pages in site_pages.values() for p in pages])


@pytest.mark.parametrize("site", SITES)
def test_every_page_passes_the_nu_checker(
    site: str, site_pages: dict[str, list[Path]], nu_errors: dict[Path, list[str]]
) -> None:
    pages = site_pages[site]
    assert len(pages) >= 4, pages  # the front page, a channel's, a story's, style.css at least
    errors = [e for page in pages for e in nu_errors[page]]
    assert not errors, "\n".join(errors)


def test_the_checker_reports_errors(
    site_pages: dict[str, list[Path]], nu_errors: dict[Path, list[str]]
) -> None:
    """The check can fail: a stray end tag, a duplicate id and a bad CSS value are reported."""
    page, sheet = site_pages["broken"]
    assert any("Duplicate ID" in e for e in nu_errors[page]), nu_errors[page]
    assert any("div" in e for e in nu_errors[page]), nu_errors[page]
    assert nu_errors[sheet], "the CSS error went unreported"
