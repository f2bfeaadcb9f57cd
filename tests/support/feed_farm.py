"""A farm of feed servers on 127.0.0.1: real feeds served as many distinct sources.

The 200 real feeds of fastfeedparser's benchmark data (``../shared/data/feeds/fastfeedparser``)
are served under ``/f/<copy>/<feed>`` on several ports, so a sources list of any length can be
made of them. Each copy's item links (and GUIDs, and JSON Feed ids) carry ``?copy=N``, so every
source brings articles of its own, as distinct feeds would. Responses carry an ETag and a
Last-Modified date and answer a matching conditional request with 304, as real servers do.

With ``pages=True`` item links point at ``/p/<copy>/<feed>/<n>`` on the farm instead, which
serves real article pages (``../shared/data/extraction/readability_test_pages``), so a crawl
that fetches pages for thin items does real extraction work without leaving the machine.

The server runs in its own process (``python -m tests.support.feed_farm``) so that serving does
not share the measured process's interpreter:

    with FeedFarm(FEEDS, ports=20) as farm:
        urls = farm.source_urls(1_000)
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[2]
FEEDS = ROOT / ".." / "shared" / "data" / "feeds" / "fastfeedparser"
PAGES = ROOT / ".." / "shared" / "data" / "extraction" / "readability_test_pages"
LAST_MODIFIED = "Tue, 01 Dec 2026 08:00:00 GMT"
# When the feeds were captured: their newest item is dated 2026-02-18 03:12 UTC. A crawl run
# "on that day" (--now) sees their items' ages as a crawl of the live feeds would have.
CAPTURED = "2026-02-18T04:00:00Z"

# A link, GUID or id value that is an http(s) URL without a query, ended by markup or a quote.
_LINK = re.compile(
    rb"(<link>|<link[^>]*?href=\"|<guid[^>]*>|<id>|\"(?:url|id)\"\s*:\s*\")"
    rb"(https?://[^\s<>\"'?&]+)(?=[<\"])"
)
_TYPES = {
    "atom": "application/atom+xml",
    "rss": "application/rss+xml",
    "rdf": "application/rdf+xml",
    "json": "application/feed+json",
}


@dataclass(frozen=True)
class Feed:
    """A feed body cut at each link, so a copy is one join."""

    parts: list[bytes]  # text before link 0, link 0, text before link 1, link 1, ..., tail
    content_type: str

    @classmethod
    def load(cls, body: bytes, content_type: str) -> Feed:
        parts: list[bytes] = []
        start = 0
        for match in _LINK.finditer(body):
            parts.append(body[start : match.start(2)])
            parts.append(match.group(2))
            start = match.end(2)
        parts.append(body[start:])
        return cls(parts, content_type)

    def copy(self, number: int, pages: str | None = None) -> bytes:
        """Copy ``number``: each link with ?copy=N, or pointing at the farm's pages."""
        out = []
        for index, part in enumerate(self.parts):
            if index % 2 == 0:
                out.append(part)
            elif pages is not None:
                out.append(f"{pages}/{index // 2}".encode())
            else:
                out.append(part + b"?copy=%d" % number)
        return b"".join(out)


def load_feeds(folder: Path = FEEDS) -> list[Feed]:
    index = folder / "benchmark_data_index.tsv"
    with index.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [
        Feed.load(
            (folder / "benchmark_data" / row["file"]).read_bytes(),
            _TYPES.get(row["format_guess"], "application/xml"),
        )
        for row in rows
    ]


def load_pages(folder: Path = PAGES) -> list[bytes]:
    return [p.read_bytes() for p in sorted(folder.glob("*/source.html"))]


def serve(ports: int, pages: bool) -> None:
    """The server process: print the ports as JSON on one line, then serve until stdin closes."""
    from aiohttp import web

    feeds = load_feeds()
    page_bodies = load_pages() if pages else []

    async def feed(request: web.Request) -> web.Response:
        served["feeds"] += 1
        copy, number = int(request.match_info["copy"]), int(request.match_info["feed"])
        etag = f'"{number}-{copy}"'
        headers = {"ETag": etag, "Last-Modified": LAST_MODIFIED}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        base = f"http://{request.host}/p/{copy}/{number}" if pages else None
        target = feeds[number % len(feeds)]
        body = target.copy(copy, base)
        return web.Response(body=body, headers={**headers, "Content-Type": target.content_type})

    served = {"feeds": 0, "pages": 0}

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(served)

    async def page(request: web.Request) -> web.Response:
        served["pages"] += 1
        n = int(request.match_info["feed"]) * 31 + int(request.match_info["n"])
        body = page_bodies[n % len(page_bodies)]
        return web.Response(body=body, headers={"Content-Type": "text/html; charset=utf-8"})

    async def robots(_request: web.Request) -> web.Response:
        return web.Response(text="User-agent: *\nAllow: /\n")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/f/{copy:\\d+}/{feed:\\d+}", feed)
        app.router.add_get("/p/{copy:\\d+}/{feed:\\d+}/{n:\\d+}", page)
        app.router.add_get("/robots.txt", robots)
        app.router.add_get("/stats", stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        bound = []
        for _ in range(ports):
            site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
            await site.start()
            server = site._server
            assert server is not None and server.sockets  # type: ignore[union-attr]
            bound.append(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        print(json.dumps({"ports": bound, "feeds": len(feeds)}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await runner.cleanup()

    asyncio.run(main())


class FeedFarm:
    """The server process as a context manager."""

    def __init__(self, *, ports: int = 20, pages: bool = False):
        self.ports_wanted = ports
        self.pages = pages
        self.ports: list[int] = []
        self.feeds = 0
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> FeedFarm:
        args = [sys.executable, "-m", "tests.support.feed_farm", "--ports", str(self.ports_wanted)]
        self._process = subprocess.Popen(
            [*args, *(["--pages"] if self.pages else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self._process.stdout is not None
        ready = json.loads(self._process.stdout.readline())
        self.ports, self.feeds = ready["ports"], ready["feeds"]
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def served(self) -> dict[str, int]:
        """How many feeds and pages the farm has served so far."""
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[0]}/stats", timeout=10) as r:
            counts: dict[str, int] = json.loads(r.read())
        return counts

    def source_urls(self, count: int) -> list[str]:
        """``count`` feed URLs: every feed once, then every feed again as the next copy, ..."""
        ports, feeds = self.ports, self.feeds
        return [
            f"http://127.0.0.1:{ports[j % len(ports)]}/f/{j // feeds}/{j % feeds}"
            for j in range(count)
        ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ports", type=int, default=20)
    parser.add_argument("--pages", action="store_true")
    options = parser.parse_args()
    serve(options.ports, options.pages)
