"""Lead images: fetched once through the crawler's fetcher from a real server on 127.0.0.1,
shrunk to a WebP thumbnail, kept in a cache across renders and published in the site, lazy-loaded
with alt text; a broken image, a non-image, one too large or on a refused address is skipped with
a log line and never breaks the render; no page points at a remote image."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lxml.html
import pytest
from PIL import Image

from aggregator.pipeline import Window, render_stage
from aggregator.records import Article, Story
from aggregator.render.images import IMAGE_MAX_BYTES, THUMBNAIL_WIDTH, image_name, thumbnails
from aggregator.settings import FetchSettings, Settings
from aggregator.store.storage import Storage
from tests.support.loopback import LoopbackServer, Response

NOW = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)
LOOPBACK = FetchSettings(allow_private_networks=True, timeout=5)


def picture(width: int = 1200, height: int = 800, kind: str = "JPEG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, format=kind)
    return out.getvalue()


def served(body: bytes, kind: str = "image/jpeg") -> Response:
    return Response(body=body, headers={"Content-Type": kind})


def test_an_image_is_fetched_once_shrunk_and_kept(tmp_path: Path) -> None:
    with LoopbackServer({"/lead.jpg": served(picture())}) as server:
        url = server.url("/lead.jpg")
        made = thumbnails([url, url], tmp_path / "images", LOOPBACK)
        again = thumbnails([url], tmp_path / "images", LOOPBACK)
        assert len(server.requests) == 1  # the second render took it from the cache
    thumb = made[url]
    assert thumb.name == image_name(url) and thumb.name.endswith(".webp")
    assert (thumb.width, thumb.height) == (THUMBNAIL_WIDTH, 213)
    with Image.open(io.BytesIO(thumb.data)) as image:
        assert image.format == "WEBP" and image.size == (THUMBNAIL_WIDTH, 213)
    assert again == made
    assert (tmp_path / "images" / thumb.name).read_bytes() == thumb.data


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        (Response(status=404, body=b"gone"), "404"),
        (served(b"<html>not a picture</html>", "text/html"), "not an image"),
        (served(picture()[:200]), "not an image"),  # a truncated JPEG
        (served(b"\xff" * (IMAGE_MAX_BYTES + 10)), "larger than"),
    ],
    ids=["missing", "html", "truncated", "oversized"],
)
def test_a_bad_image_is_skipped_with_a_log_line_and_not_fetched_again(
    tmp_path: Path, route: Response, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    with LoopbackServer({"/bad": route}) as server, caplog.at_level(logging.WARNING):
        url = server.url("/bad")
        assert thumbnails([url], tmp_path / "images", LOOPBACK) == {}
        assert thumbnails([url], tmp_path / "images", LOOPBACK) == {}
        assert len(server.requests) == 1  # a failure is remembered for a day
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(lines) == 1 and url in lines[0] and reason in lines[0].lower(), lines


def test_a_decompression_bomb_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = io.BytesIO()
    Image.new("1", (9000, 6000)).save(out, format="PNG")  # 54 Mpx in a few kilobytes
    with LoopbackServer({"/bomb.png": served(out.getvalue(), "image/png")}) as server:
        assert thumbnails([server.url("/bomb.png")], tmp_path / "images", LOOPBACK) == {}
    assert "too large" in caplog.text


def test_a_private_address_is_refused_unless_allowed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with LoopbackServer({"/lead.jpg": served(picture())}) as server:
        url = server.url("/lead.jpg")
        assert thumbnails([url], tmp_path / "images", FetchSettings()) == {}
        assert server.requests == []  # refused before connecting
    assert "refus" in caplog.text and url in caplog.text


def _articles(image: str) -> list[Article]:
    return [
        Article(
            id=f"a{n}",
            url=f"https://outlet{n}.example/story",
            title=f"Harbour wall story as outlet {n} told it",
            source_id=f"outlet{n}",
            source_name=f"Outlet {n}",
            published=NOW - timedelta(hours=n + 1),
            fetched_at=NOW - timedelta(hours=n + 1),
            image=image if n == 1 else "",
            category="world",
        )
        for n in range(2)
    ]


def test_the_page_shows_a_local_lazy_thumbnail_with_alt_text(tmp_path: Path) -> None:
    settings = Settings(min_sources=1, search=False)
    with (
        LoopbackServer({"/lead.jpg": served(picture())}) as server,
        Storage(f"sqlite:///{tmp_path / 'db.sqlite'}") as storage,
    ):
        url = server.url("/lead.jpg")
        articles = _articles(url)
        storage.add_articles(articles)
        story = Story("harbour", ("a1", "a0"), "Harbour wall", NOW - timedelta(hours=2), NOW)
        storage.save_stories([story])
        window = Window.last(NOW, 24)
        fetch = settings.fetch.model_copy(update={"allow_private_networks": True})
        settings = settings.model_copy(update={"fetch": fetch})
        out = tmp_path / "site"
        render_stage(storage, settings, window, out, images_dir=tmp_path / "images")
        render_stage(storage, settings, window, out, images_dir=tmp_path / "images")
        assert len(server.requests) == 1
    thumb = f"images/{image_name(url)}"
    assert (out / thumb).is_file()
    for page, root in (("index.html", ""), ("stories/harbour.html", "../")):
        doc = lxml.html.fromstring((out / page).read_bytes())
        images = doc.xpath("//img")
        assert [i.get("src") for i in images] == [root + thumb], page
        assert images[0].get("loading") == "lazy"
        assert images[0].get("alt") == "Harbour wall story as outlet 1 told it"
        assert (images[0].get("width"), images[0].get("height")) == ("320", "213")
    for page in out.rglob("*.html"):
        for src in lxml.html.fromstring(page.read_bytes()).xpath("//img/@src"):
            assert not src.startswith(("http:", "https:", "//")), (page, src)


def test_a_story_whose_image_fails_renders_without_one(tmp_path: Path) -> None:
    settings = Settings(min_sources=1, search=False)
    with (
        LoopbackServer({"/lead.jpg": served(b"nope", "image/jpeg")}) as server,
        Storage(f"sqlite:///{tmp_path / 'db.sqlite'}") as storage,
    ):
        storage.add_articles(_articles(server.url("/lead.jpg")))
        storage.save_stories([Story("harbour", ("a1", "a0"), "Harbour wall", NOW, NOW)])
        fetch = settings.fetch.model_copy(update={"allow_private_networks": True})
        settings = settings.model_copy(update={"fetch": fetch})
        out = tmp_path / "site"
        render_stage(storage, settings, Window.last(NOW, 24), out, images_dir=tmp_path / "img")
    assert "<img" not in (out / "index.html").read_text()
    assert not (out / "images").exists()


def test_the_demo_shows_its_outlets_pictures_as_local_thumbnails(tmp_path: Path) -> None:
    from aggregator.cli.main import main

    out = tmp_path / "site"
    assert main(["demo", "--out", str(out)]) == 0
    index = lxml.html.fromstring((out / "index.html").read_bytes())
    sources = index.xpath("//ol[@class='stories']//img/@src")
    assert len(sources) >= 3, "the demo's pages name og:images; the stories show them"
    for src in sources:
        assert src.startswith("images/") and (out / src).is_file()
    assert index.xpath("//header//a[@class='edition']/@href") == ["day/index.html"]
    assert (out / "day" / "index.html").is_file()
