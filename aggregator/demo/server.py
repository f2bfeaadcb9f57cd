"""The offline demo: fictional outlets served on 127.0.0.1, and the config that crawls them.

Feeds and article pages are rendered from ``demo.content`` with the jinja2 templates in
``data/templates/``.

    with DemoServer() as server:
        config = demo_config(server.base_url, out_dir=Path("site"), data_dir=Path("data"))
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import DictLoader, Environment, select_autoescape
from markupsafe import Markup, escape

from aggregator.demo.content import (
    DemoArticle,
    DemoContent,
    DemoOutlet,
    content_root,
    load_demo_content,
)
from aggregator.sources.load import Config, parse_sources
from aggregator.times import parse_http_date

# ---------------------------------------------------------------- rendering


def _templates() -> Environment:
    folder = content_root() / "templates"
    sources = {n.name: n.read_text(encoding="utf-8") for n in folder.iterdir() if n.is_file()}
    env = Environment(
        loader=DictLoader(sources),
        autoescape=select_autoescape(["html", "xml"]),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["ncr"] = numeric_references
    return env


def numeric_references(text: str) -> Markup:
    """Escape for XML and write every non-ASCII character as &#N; (as WordPress feeds do)."""
    escaped = str(escape(text))
    return Markup("".join(c if ord(c) < 128 else f"&#{ord(c)};" for c in escaped))


@dataclass(frozen=True)
class Resource:
    """One rendered response body with its validators."""

    body: bytes
    content_type: str
    last_modified: datetime  # what Last-Modified says, whole seconds
    etag: str

    @classmethod
    def make(cls, body: str, content_type: str, last_modified: datetime) -> Resource:
        return cls.raw(body.encode("utf-8"), content_type, last_modified)

    @classmethod
    def image(cls, data: bytes, last_modified: datetime) -> Resource:
        return cls.raw(data, "image/jpeg", last_modified)

    @classmethod
    def raw(cls, data: bytes, content_type: str, last_modified: datetime) -> Resource:
        etag = '"' + hashlib.sha256(data).hexdigest()[:20] + '"'
        return cls(data, content_type, last_modified.replace(microsecond=0), etag)


def picture(accent: str, slug: str, size: tuple[int, int] = (640, 360)) -> bytes:
    """An article's lead picture, made up: the outlet's colour with shapes placed by the slug's
    hash, so every article has its own and the demo needs no image files."""
    from PIL import Image, ImageDraw

    digest = hashlib.sha256(slug.encode()).digest()
    base = tuple(int(accent.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4))
    width, height = size
    image = Image.new("RGB", size, base)
    draw = ImageDraw.Draw(image)
    for n in range(4):
        x, y, r = (
            digest[3 * n] * width // 255,
            digest[3 * n + 1] * height // 255,
            30 + digest[3 * n + 2] // 3,
        )
        shade = tuple(min(255, c + 40 + 30 * n) for c in base)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=shade)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()


class _Site:
    """Renders every feed and page of the demo for one base URL and one `now`."""

    def __init__(self, content: DemoContent, base_url: str, now: datetime):
        self.content = content
        self.base_url = base_url.rstrip("/")
        self.now = now
        self.env = _templates()

    def published(self, article: DemoArticle) -> datetime:
        return self.now - timedelta(hours=article.hours_ago)

    def updated(self, article: DemoArticle) -> datetime:
        if article.updated_hours_ago is None:
            return self.published(article)
        return self.now - timedelta(hours=article.updated_hours_ago)

    def url(self, path: str) -> str:
        return self.base_url + path

    def resources(self) -> dict[str, Resource]:
        """Path -> rendered resource, for the whole demo."""
        out: dict[str, Resource] = {
            "/": Resource.make(self._index(), "text/html; charset=utf-8", self.now),
            "/robots.txt": Resource.make(
                "User-agent: *\nAllow: /\n", "text/plain; charset=utf-8", self.now
            ),
        }
        for outlet in self.content.outlets:
            out[outlet.feed_path] = self._feed(outlet)
            out[f"/{outlet.id}/"] = Resource.make(
                self._front_page(outlet), "text/html; charset=utf-8", self._newest(outlet)
            )
            for article in outlet.articles:
                out[outlet.article_path_for(article)] = Resource.make(
                    self._page(outlet, article), "text/html; charset=utf-8", self.updated(article)
                )
                # the picture the page names as its og:image
                out[f"/{outlet.id}/images/{article.slug}.jpg"] = Resource.image(
                    picture(outlet.accent, article.slug), self.published(article)
                )
        return out

    def _newest(self, outlet: DemoOutlet) -> datetime:
        return max((self.updated(a) for a in outlet.articles), default=self.now)

    def _item(self, outlet: DemoOutlet, article: DemoArticle) -> dict[str, Any]:
        """The template context of one article, shared by feeds and pages."""
        url = self.url(outlet.article_path_for(article))
        published, updated = self.published(article), self.updated(article)
        ui = self.content.ui[outlet.language]
        return {
            "article": article,
            "url": url,
            "link": url + ("?" + article.link_query if article.link_query else ""),
            "guid": f"{outlet.id}:{article.slug}",
            "published": published,
            "updated": updated,
            "published_rfc822": format_datetime(published, usegmt=True),
            "published_iso": published.isoformat(timespec="seconds"),
            "updated_iso": updated.isoformat(timespec="seconds"),
            "published_human": _human_date(published, ui),
            "updated_human": _human_date(updated, ui) if updated != published else "",
            "body_html": Markup("\n").join(
                Markup("<p>{}</p>").format(p) for p in article.paragraphs
            ),
        }

    def _feed(self, outlet: DemoOutlet) -> Resource:
        items = sorted(outlet.articles, key=lambda a: a.hours_ago)
        template = self.env.get_template(f"{outlet.feed_format}.xml")
        newest = self._newest(outlet)
        body = template.render(
            outlet=outlet,
            home_url=self.url(f"/{outlet.id}/"),
            feed_url=self.url(outlet.feed_path),
            build_date=format_datetime(newest, usegmt=True),
            updated_iso=newest.isoformat(timespec="seconds"),
            items=[self._item(outlet, a) for a in items],
        )
        kind = "rss" if outlet.feed_format == "rss" else "atom"
        return Resource.make(body, f"application/{kind}+xml; charset=utf-8", newest)

    def _page(self, outlet: DemoOutlet, article: DemoArticle) -> str:
        others = sorted(
            (a for a in outlet.articles if a.slug != article.slug), key=lambda a: a.hours_ago
        )
        return self.env.get_template("article.html").render(
            outlet=outlet,
            ui=self.content.ui[outlet.language],
            home_url=self.url(f"/{outlet.id}/"),
            feed_url=self.url(outlet.feed_path),
            item=self._item(outlet, article),
            related=[self._item(outlet, a) for a in others[:4]],
            year=self.now.year,
        )

    def _front_page(self, outlet: DemoOutlet) -> str:
        items = sorted(outlet.articles, key=lambda a: a.hours_ago)
        return self.env.get_template("front.html").render(
            outlet=outlet,
            ui=self.content.ui[outlet.language],
            home_url=self.url(f"/{outlet.id}/"),
            feed_url=self.url(outlet.feed_path),
            items=[self._item(outlet, a) for a in items],
            year=self.now.year,
        )

    def _index(self) -> str:
        return self.env.get_template("index.html").render(
            outlets=[
                (o, self.url(f"/{o.id}/"), self.url(o.feed_path)) for o in self.content.outlets
            ]
        )


def _human_date(when: datetime, ui: dict[str, Any]) -> str:
    """A date the way the outlet's readers write it, e.g. "3 May 2025, 14:05 UTC"."""
    month = ui["months"][when.month - 1]
    return str(ui["date_format"]).format(
        day=when.day, month=month, year=when.year, time=when.strftime("%H:%M")
    )


# ---------------------------------------------------------------- server


class QuietHTTPServer(ThreadingHTTPServer):
    """A client that hangs up (a connection pool closing an idle socket) is no server fault:
    socketserver would print its traceback to stderr, among the crawl's own messages."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionResetError | BrokenPipeError):
            return
        super().handle_error(request, client_address)


class DemoServer:
    """Serves the demo outlets on 127.0.0.1 (ephemeral port) from a daemon thread.

    Feeds and pages are rendered once, at construction, with absolute URLs for the bound port and
    times relative to ``now``; they carry ETag and Last-Modified and answer conditional requests
    with 304.
    """

    def __init__(self, now: datetime | None = None, content: DemoContent | None = None):
        now = now or datetime.now(UTC)
        now = now if now.tzinfo else now.replace(tzinfo=UTC)
        self.now = now.replace(microsecond=0)  # feeds and HTTP dates carry whole seconds
        self.content = content or load_demo_content()
        self.requests: list[str] = []  # "METHOD path" for every request seen, for tests
        self._httpd = QuietHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self.port: int = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.resources = _Site(self.content, self.base_url, self.now).resources()
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def feed_urls(self) -> dict[str, str]:
        """Outlet id -> absolute feed URL."""
        return {o.id: self.base_url + o.feed_path for o in self.content.outlets}

    def article_url(self, outlet: DemoOutlet, article: DemoArticle) -> str:
        return self.base_url + outlet.article_path_for(article)

    @property
    def story_labels(self) -> dict[str, str]:
        """Article URL -> story key: the ground truth for scoring the clusterer on the demo."""
        return {self.article_url(o, a): a.story for o, a in self.content.articles}

    def __enter__(self) -> DemoServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(_DemoHandler):
            demo = server

        return Handler


class _DemoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "aggregator-demo"
    demo: DemoServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the CLI prints its own
        pass

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _serve(self, send_body: bool) -> None:
        self.demo.requests.append(f"{self.command} {self.path}")
        # Query strings (utm_* tracking and the like) do not change the page.
        resource = self.demo.resources.get(urlsplit(self.path).path)
        if resource is None:
            self._send(
                404, b"not found\n", {"Content-Type": "text/plain; charset=utf-8"}, send_body
            )
            return
        headers = {
            "Content-Type": resource.content_type,
            "ETag": resource.etag,
            "Last-Modified": format_datetime(resource.last_modified, usegmt=True),
            "Cache-Control": "max-age=60",
        }
        if _not_modified(self.headers, resource):
            self._send(304, b"", headers, send_body=False)
        else:
            self._send(200, resource.body, headers, send_body)

    def _send(self, status: int, body: bytes, headers: dict[str, str], send_body: bool) -> None:
        try:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client went away: nothing to do
            pass


def _not_modified(headers: Any, resource: Resource) -> bool:
    """RFC 9110: If-None-Match wins; If-Modified-Since is used only without it."""
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in tags or resource.etag in tags
    since = parse_http_date(headers.get("If-Modified-Since"))
    return since is not None and resource.last_modified <= since


# ---------------------------------------------------------------- config


def demo_config_text(base_url: str, *, out_dir: Path, data_dir: Path) -> str:
    """The demo's sources.yaml, as an editor would write it."""
    q = json.dumps  # a JSON string is a valid double-quoted YAML scalar
    lines = [
        "# The offline demo: fictional outlets served by aggregator itself on 127.0.0.1.",
        "settings:",
        f"  title: {q('Aggregator demo')}",
        f"  description: {q('Fictional outlets, real pipeline: the last 24 hours, summarised.')}",
        "  language: en",
        f"  site_url: {q('http://localhost:8000/')}",
        "  window_hours: 24",
        f"  output_dir: {q(str(out_dir))}",
        f"  data_dir: {q(str(data_dir))}",
        "  fetch:",
        "    allow_private_networks: true  # the demo outlets live on 127.0.0.1",
        "  # llm: not configured, so the offline extractive summariser writes the summaries",
        "sources:",
    ]
    for outlet in load_demo_content().outlets:
        lines += [
            f"  - id: {outlet.id}",
            f"    name: {q(outlet.name)}",
            f"    url: {q(base_url.rstrip('/') + outlet.feed_path)}",
            f"    category: {outlet.category}",
            f"    language: {outlet.language}",
            f"    weight: {outlet.weight}",
            f"    full_text: {'true' if outlet.full_text else 'false'}",
        ]
    return "\n".join(lines) + "\n"


def demo_config(base_url: str, *, out_dir: Path, data_dir: Path) -> Config:
    """The demo's Config, validated by the same parser as editors' sources.yaml files.

    The environment is deliberately not layered over it: the demo runs offline whatever
    OPENAI_* variables the shell has.
    """
    text = demo_config_text(base_url, out_dir=out_dir, data_dir=data_dir)
    parsed = parse_sources(text, "demo sources.yaml")
    return Config(settings=parsed.settings, sources=tuple(parsed.sources), path=None)
