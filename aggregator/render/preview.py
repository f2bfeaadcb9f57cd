"""``aggregator serve``: the built site on 127.0.0.1, for an editor's preview.

The site is served as published (each request reads the live release, so a publish shows at
the next reload). On top of it, only here, two things the static site never has:

- a preview bar on every page with a "Rebuild" button: the digest runs again (cluster,
  summarise, render; no crawl) under the run lock, and the page reloads;
- with an LLM configured, an "Ask about this story" form on each story page, answered from the
  story's articles by ``summarise.ask.ask``; the answer page cites them.

The injected markup is the only change to a page: its Content-Security-Policy gets
``form-action 'self'`` so the two forms may post here, and still allows no script.

Only 127.0.0.1 is bound; requests whose Host is not this server (DNS rebinding) or whose
Origin is another site (a page elsewhere posting to localhost) are refused.
"""

from __future__ import annotations

import html
import logging
import mimetypes
import re
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from aggregator.errors import UserError

if TYPE_CHECKING:
    from aggregator.summarise.ask import Answer

log = logging.getLogger(__name__)

PREFIX = "/__preview/"
_STORY = re.compile(r"^stories/([A-Za-z0-9_-]{1,40})\.html$")
_CSP = re.compile(r"form-action 'none'")
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
}

_STYLE = (
    "<style>.preview-bar{display:flex;gap:1em;align-items:center;padding:.4em 1em;"
    "background:#fff3c4;color:#222;font:14px system-ui,sans-serif}.preview-bar form{margin:0}"
    ".ask{margin-top:2em}.ask input[type=text]{width:min(100%,30em)}</style>\n"
)

Ask = Callable[[str, str], "Answer"]  # (story id, question) -> the answer
Rebuild = Callable[[], str]  # runs the digest; returns a line saying what it did


@dataclass
class Preview:
    """What the server serves and can do."""

    site: Path  # the published site (a link to the live release)
    rebuild: Rebuild | None = None
    ask: Ask | None = None
    language: str = "en"


def serve(
    preview: Preview, port: int = 8000, *, ready: Callable[[str], None] | None = None
) -> None:
    """Serve until interrupted (KeyboardInterrupt, or ``server.shutdown()`` from a thread)."""
    server = make_server(preview, port)
    if ready is not None:
        ready(f"http://127.0.0.1:{server.server_address[1]}/")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


def make_server(preview: Preview, port: int = 8000) -> ThreadingHTTPServer:
    """A server bound to 127.0.0.1:``port`` (0: any free port), not yet serving."""
    rebuilding = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        server_version = "aggregator-preview"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("preview: " + format, *args)

        # -- plumbing ---------------------------------------------------------------------

        def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _page(self, status: int, title: str, body: str) -> None:
            self._send(status, _page(title, body, preview.language), _TYPES[".html"])

        def _trusted(self) -> bool:
            """The request names this server and, when it says where it comes from, comes
            from a page of this server."""
            port_now = server.server_address[1]
            hosts = {f"127.0.0.1:{port_now}", f"localhost:{port_now}"}
            if self.headers.get("Host", "") not in hosts:
                return False
            origin = self.headers.get("Origin")
            if origin is not None and origin not in {f"http://{h}" for h in hosts}:
                return False
            return self.headers.get("Sec-Fetch-Site", "same-origin") in {
                "same-origin",
                "none",
            }

        # -- requests ---------------------------------------------------------------------

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            if not self._trusted():
                self._page(HTTPStatus.FORBIDDEN, "Refused", "<p>Not a request to this preview.</p>")
                return
            url = urllib.parse.urlsplit(self.path)
            if url.path == PREFIX + "ask":
                self._ask(urllib.parse.parse_qs(url.query))
                return
            self._file(urllib.parse.unquote(url.path))

        def do_POST(self) -> None:
            if not self._trusted() or self.path != PREFIX + "rebuild" or preview.rebuild is None:
                self._page(HTTPStatus.FORBIDDEN, "Refused", "<p>Not a request to this preview.</p>")
                return
            if not rebuilding.acquire(blocking=False):
                self._page(HTTPStatus.CONFLICT, "Busy", "<p>A rebuild is already running.</p>")
                return
            try:
                done = preview.rebuild()
            except UserError as exc:  # the run lock, the database, the templates
                self._page(
                    HTTPStatus.CONFLICT,
                    "Not rebuilt",
                    f"<p>Not rebuilt: {html.escape(str(exc))}</p><p><a href='/'>Back</a></p>",
                )
                return
            finally:
                rebuilding.release()
            log.info("preview: %s", done)
            self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", Location="/")

        def _file(self, path: str) -> None:
            found = _site_file(preview.site.resolve(), path.lstrip("/"))
            if found is None:
                self._page(HTTPStatus.NOT_FOUND, "Not found", "<p>No such page in the site.</p>")
                return
            relative, body = found
            suffix = PurePosixPath(relative).suffix
            content_type = _TYPES.get(suffix) or (
                mimetypes.guess_type(relative)[0] or "application/octet-stream"
            )
            if suffix == ".html":
                story = _STORY.match(relative)
                body = _inject(body, preview, story.group(1) if story else None)
            self._send(HTTPStatus.OK, body, content_type)

        def _ask(self, query: dict[str, list[str]]) -> None:
            if preview.ask is None:
                self._page(HTTPStatus.NOT_FOUND, "Not found", "<p>No LLM is configured.</p>")
                return
            story = (query.get("story") or [""])[0]
            question = (query.get("q") or [""])[0]
            try:
                answer = preview.ask(story, question)
            except UserError as exc:
                self._page(HTTPStatus.BAD_REQUEST, "Not asked", f"<p>{html.escape(str(exc))}</p>")
                return
            self._page(HTTPStatus.OK, "Answer", answer_html(answer))

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def _site_file(root: Path, relative: str) -> tuple[str, bytes] | None:
    """The file a request path names inside the site (a folder: its index.html), as its path
    relative to the site and its bytes; None for anything outside the site or not a file (a
    NUL byte, a name too long, a link out of the site)."""
    try:
        target = (root / relative).resolve()
        if not target.is_relative_to(root):
            return None
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            return None
        return target.relative_to(root).as_posix(), target.read_bytes()
    except (ValueError, OSError):
        return None


def _inject(body: bytes, preview: Preview, story_id: str | None) -> bytes:
    """The page with the preview bar (and a story page's ask form), forms allowed to post
    here and nowhere else."""
    text = body.decode("utf-8", errors="replace")
    text = _CSP.sub("form-action 'self'", text, count=1)
    text = text.replace("</head>", _STYLE + "</head>", 1)
    bar = '<div class="preview-bar" role="region" aria-label="Preview">Preview'
    if preview.rebuild is not None:
        bar += (
            f' <form method="post" action="{PREFIX}rebuild">'
            '<button type="submit">Rebuild the site</button></form>'
        )
    bar += "</div>"
    text = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + "\n" + bar, text, count=1)
    if story_id is not None and preview.ask is not None:
        form = (
            f'<section class="ask" aria-labelledby="ask-h"><h2 id="ask-h">Ask about this story'
            f'</h2><form method="get" action="{PREFIX}ask">'
            f'<input type="hidden" name="story" value="{html.escape(story_id)}">'
            '<label>Your question <input type="text" name="q" required maxlength="500">'
            '</label> <button type="submit">Ask</button></form>'
            "<p>Answered from this story's articles only, each sentence cited.</p></section>"
        )
        text = text.replace("</article>", form + "\n</article>", 1)
    return text.encode("utf-8")


def answer_html(answer: Answer) -> str:
    """The answer as HTML: each sentence with links to the articles it cites; every piece of
    text escaped (the model's output and the articles' titles are untrusted)."""
    by_number = {s.number: s for s in answer.sources}
    parts = [f"<p class='question'><strong>Q:</strong> {html.escape(answer.question)}</p>"]
    if answer.sentences:
        sentences = []
        for line in answer.sentences:
            marks = "".join(
                f'<sup><a href="{html.escape(by_number[n].url)}" rel="nofollow noopener">'
                f"[{n}]</a></sup>"
                for n in line.citations
                if n in by_number
            )
            sentences.append(html.escape(line.text) + marks)
        parts.append("<p class='answer'>" + " ".join(sentences) + "</p>")
    else:
        parts.append(f"<p class='answer'>{html.escape(answer.text())}</p>")
    if answer.cited:
        items = "".join(
            f'<li value="{s.number}">{html.escape(s.outlet)}: <a href="{html.escape(s.url)}" '
            f'rel="nofollow noopener">{html.escape(s.title)}</a></li>'
            for s in answer.cited
        )
        parts.append(f"<ol class='sources'>{items}</ol>")
    who = f"the LLM ({answer.model})" if answer.method == "llm" else "term overlap (extractive)"
    note = f"; {answer.note}" if answer.note else ""
    parts.append(f"<p class='method'>Answered by {html.escape(who + note)}.</p>")
    back = f"/stories/{urllib.parse.quote(answer.story_id)}.html"
    parts.append(f'<p><a href="{html.escape(back)}">Back to the story</a></p>')
    return "\n".join(parts)


def _page(title: str, body: str, language: str) -> bytes:
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{html.escape(language)}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta http-equiv="Content-Security-Policy" content="script-src \'none\'; '
        "object-src 'none'; base-uri 'none'; form-action 'self'\">\n"
        f"<title>{html.escape(title)} · preview</title>\n"
        '<link rel="stylesheet" href="/style.css">\n</head>\n<body>\n<main>\n'
        f"<h1>{html.escape(title)}</h1>\n{body}\n</main>\n</body>\n</html>\n"
    ).encode()
