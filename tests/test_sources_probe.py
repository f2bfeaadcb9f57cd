"""`sources check --probe` and `sources add`, against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.cli.main import main
from aggregator.crawl.probe import feed_links, judge
from aggregator.records import FeedItem, ParsedFeed
from aggregator.sources.load import load_config
from tests.support.loopback import LoopbackServer, Response

LONG = "Every word of the article is in the feed. " * 20  # about 840 characters


def _rss(title: str, items: list[tuple[str, str, str]]) -> bytes:
    body = "".join(
        f"<item><title>{t}</title><link>https://example.org/{t.replace(' ', '-')}</link>"
        f"<pubDate>{d}</pubDate><description>{text}</description></item>"
        for t, d, text in items
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>https://example.org/</link>{body}</channel></rss>"
    ).encode()


FULL_RSS = _rss(
    "Full Text Times",
    [
        ("One", "Tue, 24 Nov 2026 08:00:00 GMT", LONG),
        ("Two", "Wed, 25 Nov 2026 09:30:00 GMT", LONG),
    ],
)
TEASER_ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Teaser Tribune</title>
<id>urn:t</id><updated>2026-11-20T10:00:00Z</updated>
<entry><title>A</title><id>urn:a</id><link href="https://example.org/a"/>
<updated>2026-11-20T10:00:00Z</updated><summary>Short teaser.</summary></entry>
</feed>"""
XML = {"Content-Type": "application/rss+xml"}
HTML = {"Content-Type": "text/html; charset=utf-8"}


def _write(path: Path, server: LoopbackServer, routes: dict[str, str]) -> None:
    lines = ["sources:"]
    for source_id, route in routes.items():
        lines += [f"  - id: {source_id}", f"    name: {source_id}", f"    url: {server.url(route)}"]
    lines += ["  - id: off", "    name: Off", "    url: http://127.0.0.1:9/x", "    enabled: false"]
    path.write_text("\n".join(lines) + "\n")


def test_probe_table_and_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    routes = {
        "/full.xml": Response(body=FULL_RSS, headers=XML),
        "/teaser.atom": Response(
            body=TEASER_ATOM, headers={"Content-Type": "application/atom+xml"}
        ),
        "/page.html": Response(body=b"<!doctype html><html><body>Hi</body></html>", headers=HTML),
    }
    with LoopbackServer(routes) as srv:
        cfg = tmp_path / "sources.yaml"
        _write(cfg, srv, {"full": "/full.xml", "teaser": "/teaser.atom"})
        assert main(["sources", "check", "--probe", "--config", str(cfg)]) == 0
        out = capsys.readouterr().out
        full_row = next(line for line in out.splitlines() if "│ full " in line)
        assert "200" in full_row and "rss" in full_row and "2026-11-25 09:30" in full_row
        assert "│ yes" in full_row and "│ 2 " in full_row
        teaser_row = next(line for line in out.splitlines() if "│ teaser " in line)
        assert "atom" in teaser_row and "teaser" in teaser_row.split("│")[6]
        assert "probe: 2 sources, 2 OK, 0 failed" in out
        assert "│ off " not in out  # disabled sources are not fetched
        assert not any("/x" in r.path for r in srv.requests)

        _write(cfg, srv, {"full": "/full.xml", "gone": "/missing.xml", "page": "/page.html"})
        assert main(["sources", "check", "--probe", "--config", str(cfg)]) == 1
        out = capsys.readouterr().out
        gone_row = next(line for line in out.splitlines() if "│ gone " in line)
        assert "404" in gone_row
        assert "HTML page" in next(line for line in out.splitlines() if "│ page " in line)
        assert "probe: 3 sources, 1 OK, 2 failed" in out


def test_probe_respects_allow_private_networks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with LoopbackServer({"/full.xml": Response(body=FULL_RSS, headers=XML)}) as srv:
        cfg = tmp_path / "sources.yaml"
        _write(cfg, srv, {"full": "/full.xml"})
        monkeypatch.delenv("AGGREGATOR_ALLOW_PRIVATE_NETWORKS")
        assert main(["sources", "check", "--probe", "--config", str(cfg)]) == 1
        assert "private" in capsys.readouterr().out
        assert srv.requests == []


def test_check_without_probe_does_not_fetch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LoopbackServer({}) as srv:
        cfg = tmp_path / "sources.yaml"
        _write(cfg, srv, {"a": "/a.xml"})
        assert main(["sources", "check", "--config", str(cfg)]) == 0
        assert "OK, 2 sources (1 enabled)" in capsys.readouterr().out
        assert srv.requests == []


def test_judge_full_text_newest_and_empty() -> None:
    day = datetime(2026, 11, 25, tzinfo=UTC)
    items = (
        FeedItem(title="a", link="l", summary="x" * 500, published=day),
        FeedItem(title="b", link="m", summary="short", published=None),
    )
    probe = judge("u", 200, ParsedFeed(items=items, format="rss20"), short_chars=400)
    assert (probe.items, probe.newest, probe.full_text, probe.status) == (2, day, True, "200")
    teaser = judge("u", 200, ParsedFeed(items=items[1:]), short_chars=400)
    assert not teaser.full_text and teaser.newest is None
    assert not judge("u", 200, ParsedFeed(items=()), short_chars=400).full_text


def test_feed_links_resolve_and_filter() -> None:
    html = b"""<html><head>
    <link rel="stylesheet" href="/s.css">
    <link rel="alternate" type="application/rss+xml" href="/feeds/all.rss">
    <LINK REL="Alternate home" TYPE="application/atom+xml; charset=utf-8" HREF="atom.xml">
    <link rel="alternate" type="text/html" href="/en/">
    <link rel="alternate" type="application/feed+json" href="https://cdn.example/f.json">
    <link rel="alternate" type="application/rss+xml" href="/feeds/all.rss">
    <link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">
    </head></html>"""
    assert feed_links(html, "https://site.example/news/index.html") == [
        "https://site.example/feeds/all.rss",
        "https://site.example/news/atom.xml",
        "https://cdn.example/f.json",
    ]


HOME_WITH_LINK = (
    b'<!doctype html><html><head><title>Home</title><link rel="alternate" '
    b'type="application/rss+xml" href="feeds/main.xml"></head><body>Welcome</body></html>'
)
HOME_WITHOUT_LINK = b"<!doctype html><html><head><title>Home</title></head><body>Hi</body></html>"
START = "# editor's notes stay\nsources:\n  - id: keep\n    name: Keep\n    url: https://keep.example/rss\n"


def test_add_a_feed_url_derives_id_and_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LoopbackServer({"/full.xml": Response(body=FULL_RSS, headers=XML)}) as srv:
        cfg = tmp_path / "sources.yaml"
        cfg.write_text(START)
        assert main(["sources", "add", srv.url("/full.xml"), "--config", str(cfg)]) == 0
        assert "added 'full-text-times'" in capsys.readouterr().out
        text = cfg.read_text()
        assert text.startswith(START)
        assert text[len(START) :] == (
            f"  - id: full-text-times\n    name: Full Text Times\n    url: {srv.url('/full.xml')}\n"
        )
        # the same feed again, written differently: refused, the file untouched
        again = srv.url("/full.xml").replace("127.0.0.1", "127.0.0.1.") + "?utm_source=x"
        assert main(["sources", "add", again, "--config", str(cfg)]) == 2
        assert "already in" in capsys.readouterr().err
        assert cfg.read_text() == text


def test_add_discovers_the_feed_from_a_home_page_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    routes = {
        "/site/": Response(body=HOME_WITH_LINK, headers=HTML),
        "/site/feeds/main.xml": Response(body=FULL_RSS, headers=XML),
    }
    with LoopbackServer(routes) as srv:
        cfg = tmp_path / "sources.yaml"
        cfg.write_text(START)
        argv = ["sources", "add", srv.url("/site/"), "--config", str(cfg)]
        assert main([*argv, "--id", "mine", "--name", "My Name", "--category", "world"]) == 0
        [_, added] = load_config(cfg, env={}).sources
        assert (added.id, added.name, added.category) == ("mine", "My Name", "world")
        assert added.url == srv.url("/site/feeds/main.xml")  # the relative href, resolved
        out = capsys.readouterr().out
        assert "): rss, 2 items, full text ->" in out


def test_add_tries_common_paths_when_the_page_links_no_feed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    routes = {
        "/": Response(body=HOME_WITHOUT_LINK, headers=HTML),
        "/feed": Response(body=HOME_WITHOUT_LINK, headers=HTML),  # a page, not a feed
        "/atom.xml": Response(body=TEASER_ATOM, headers={"Content-Type": "application/atom+xml"}),
    }
    with LoopbackServer(routes) as srv:
        cfg = tmp_path / "sources.yaml"
        cfg.write_text(START)
        assert main(["sources", "add", srv.url("/"), "--config", str(cfg)]) == 0
        [_, added] = load_config(cfg, env={}).sources
        assert (added.id, added.url) == ("teaser-tribune", srv.url("/atom.xml"))
        paths = [r.path for r in srv.requests]
        assert paths == ["/", "/feed", "/rss.xml", "/atom.xml"]


def test_add_without_any_feed_fails_and_leaves_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LoopbackServer({"/": Response(body=HOME_WITHOUT_LINK, headers=HTML)}) as srv:
        cfg = tmp_path / "sources.yaml"
        cfg.write_text(START)
        assert main(["sources", "add", srv.url("/"), "--config", str(cfg)]) == 2
        err = capsys.readouterr().err
        assert "no feed found" in err and "/feed.xml" in err
        assert cfg.read_text() == START
        assert main(["sources", "add", srv.url("/nothing"), "--config", str(cfg)]) == 2
        assert "404" in capsys.readouterr().err


def test_add_refuses_a_listed_url_before_fetching(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LoopbackServer({}) as srv:
        cfg = tmp_path / "sources.yaml"
        cfg.write_text(START + f"  - id: local\n    name: L\n    url: {srv.url('/f.xml')}\n")
        assert main(["sources", "add", srv.url("/f.xml/"), "--config", str(cfg)]) == 2
        assert "as 'local'" in capsys.readouterr().err
        assert srv.requests == []
