"""``aggregator serve``: the site on 127.0.0.1 with a rebuild button and, with an LLM, the story
pages' ask form, answered against the loopback LLM stub; the static site never has either."""

from __future__ import annotations

import http.client
import re
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.errors import RunLockedError
from aggregator.render.preview import Preview, make_server
from aggregator.settings import LLMSettings, Settings
from aggregator.store import Storage
from aggregator.summarise.ask import Answer, ask
from tests.support.openai_stub import OpenAIStub, reply_json
from tests.support.processes import aggregator, wait_for
from tests.test_ask import ARTICLES, STORY, db  # noqa: F401  (the fixture)

SITE = {
    "index.html": '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
    "content=\"script-src 'none'; form-action 'none'\"></head><body><main>front</main></body>"
    "</html>",
    "stories/bridge.html": '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-'
    "Policy\" content=\"script-src 'none'; form-action 'none'\"></head><body><main><article>"
    "<h1>Bridge</h1></article></main></body></html>",
    "style.css": "body{}",
    "category/world/index.html": "<html><head></head><body>world</body></html>",
}


def write_site(root: Path) -> Path:
    for name, text in SITE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Preview, int]]:
    preview = Preview(write_site(tmp_path / "site"))
    server = make_server(preview, 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield preview, server.server_address[1]
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def get(
    port: int, path: str, method: str = "GET", **headers: str
) -> tuple[int, str, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(), dict(resp.getheaders())
    finally:
        conn.close()


def test_pages_are_served_with_the_preview_bar_only_here(running: tuple[Preview, int]) -> None:
    preview, port = running
    status, body, headers = get(port, "/")
    assert status == 200 and "front" in body and headers["Content-Type"].startswith("text/html")
    assert 'class="preview-bar"' in body and "Rebuild" not in body  # no rebuild given
    assert "form-action 'self'" in body and "form-action 'none'" not in body
    assert "script-src 'none'" in body  # still no script
    assert get(port, "/category/world/")[1].count("world") == 1
    assert get(port, "/style.css")[2]["Content-Type"].startswith("text/css")
    # the files on disk are untouched: the static site has neither bar nor form
    assert "preview-bar" not in (preview.site / "index.html").read_text()
    assert "Ask about" not in get(port, "/stories/bridge.html")[1]  # no LLM: no form


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/stories/../../secret.txt",
        "/nope.html",
        "/index.html%00.txt",
        "/" + "a" * 5000,
    ],
)
def test_nothing_outside_the_site_is_served(running: tuple[Preview, int], path: str) -> None:
    preview, port = running
    (preview.site.parent / "secret.txt").write_text("secret")
    status, body, _ = get(port, path)
    assert status == 404 and "secret" not in body


def test_requests_for_another_host_or_from_another_site_are_refused(
    running: tuple[Preview, int],
) -> None:
    _, port = running
    assert get(port, "/", Host="evil.example")[0] == 403  # DNS rebinding
    assert get(port, "/", **{"Sec-Fetch-Site": "cross-site"})[0] == 403
    posted = get(port, "/__preview/rebuild", "POST", Origin="https://evil.example")
    assert posted[0] == 403


def test_rebuild_runs_the_digest_and_reports_a_held_lock(running: tuple[Preview, int]) -> None:
    preview, port = running
    calls: list[str] = []

    def rebuild() -> str:
        calls.append("digest")
        if len(calls) == 2:
            raise RunLockedError("another aggregator run holds the run lock")
        (preview.site / "index.html").write_text("<html><head></head><body>new</body></html>")
        return "rebuilt"

    preview.rebuild = rebuild
    assert "Rebuild the site" in get(port, "/")[1]
    status, _, headers = get(port, "/__preview/rebuild", "POST")
    assert status == 303 and headers["Location"] == "/"
    assert "new" in get(port, "/")[1]
    status, body, _ = get(port, "/__preview/rebuild", "POST")
    assert status == 409 and "another aggregator run holds the run lock" in body
    assert get(port, "/__preview/rebuild")[0] == 404  # GET never rebuilds


def test_the_ask_form_is_answered_from_the_storys_articles(
    running: tuple[Preview, int],
    db: str,  # noqa: F811
) -> None:
    preview, port = running
    with OpenAIStub([]) as stub, Storage(db) as storage:
        settings = Settings(
            llm=LLMSettings(base_url=stub.base_url, model="stub-model", timeout=5, max_retries=0)
        )

        def answer(story_id: str, question: str) -> Answer:
            return ask(storage, story_id, question, settings)

        preview.ask = answer
        page = get(port, "/stories/bridge.html")[1]
        assert "Ask about this story" in page
        form = re.search(r'<form method="get" action="([^"]+)">', page)
        assert form and form.group(1) == "/__preview/ask"
        assert '<input type="hidden" name="story" value="bridge">' in page
        stub.reset([reply_json({"answered": True, "sentences": [
            {"text": "Repairs will take at least two weeks <script>alert(1)</script>.",
             "citations": [1, 2]},
        ]})])  # fmt: skip
        question = "How long? <img src=x onerror=alert(1)>"
        query = urllib.parse.urlencode({"story": "bridge", "q": question})
        status, body, _ = get(port, f"/__preview/ask?{query}")
        assert status == 200, body
        assert "Repairs will take at least two weeks" in body
        assert "<script>" not in body and "<img src=x" not in body  # escaped
        assert "&lt;img src=x onerror=alert(1)&gt;" in body
        assert 'href="https://alpha.example/bridge"' in body  # [1] links to its article
        assert "Answered by the LLM (stub-model)" in body
        status, body, _ = get(port, "/__preview/ask?story=nope&q=Who")
        assert status == 400 and "no story has the id" in body


def test_the_command_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    site = write_site(tmp_path / "site")
    config = tmp_path / "sources.yaml"
    config.write_text(
        f"settings:\n  output_dir: {site}\n  data_dir: {tmp_path / 'data'}\nsources: []\n"
    )
    with Storage(f"sqlite:///{tmp_path / 'news.db'}") as storage:
        storage.add_articles(ARTICLES)
        storage.save_stories([STORY])
    process = aggregator(
        [
            "serve",
            "--port",
            "0",
            "--config",
            str(config),
            "--db",
            f"sqlite:///{tmp_path / 'news.db'}",
        ],
        tmp_path,
    )
    try:
        wait_for(lambda: "Previewing" in process.stdout, "the server to start", timeout=60)
        port = int(re.search(r"127\.0\.0\.1:(\d+)/", process.stdout).group(1))  # type: ignore[union-attr]
        assert "front" in get(port, "/")[1]
        status = get(port, "/__preview/rebuild", "POST")[0]
        assert status == 303, process.stderr
        rebuilt = get(port, "/")[1]
        assert "front" not in rebuilt and "<!DOCTYPE html>" in rebuilt  # the digest's own page
        process.popen.terminate()
        assert process.wait(30) in (0, -15, 143)
    finally:
        process.stop()
