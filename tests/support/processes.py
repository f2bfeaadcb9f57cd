"""Real ``aggregator`` processes for the tests, and a feed that answers only when told to.

with LoopbackServer() as srv:
    held = HeldFeed(feed_xml("wire", srv.url("/")))
    srv.routes["/feed.xml"] = held
    proc = aggregator(["schedule", "--config", str(cfg)], tmp_path)
    wait_for(held.entered.is_set, "the crawl to ask for the feed")  # now mid-crawl
    proc.popen.send_signal(signal.SIGTERM)
    held.release.set()
    assert proc.wait() == 0
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.loopback import Request, Response

ROOT = Path(__file__).resolve().parents[2]
WORDS = " ".join(["The council met again today to go through every line of the plan."] * 12)


def feed_xml(name: str, base_url: str, items: int = 2) -> bytes:
    """An RSS feed of ``items`` articles, each with enough text that no page is fetched, and
    no date: an article's time is when it was fetched, always inside the window."""
    entries = "".join(
        f"<item><title>{name} report number {i} on the harbour works</title>"
        f"<link>{base_url.rstrip('/')}/{name}/{i}</link>"
        f"<description>{WORDS}</description></item>"
        for i in range(1, items + 1)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title>'
        f"{entries}</channel></rss>"
    ).encode()


class HeldFeed:
    """A route that answers only once ``release`` is set; ``entered`` is set on a request."""

    def __init__(self, body: bytes):
        self.body = body
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, _request: Request) -> Response:
        self.entered.set()
        self.release.wait(60)
        return Response(body=self.body, headers={"Content-Type": "application/rss+xml"})


def write_config(path: Path, feeds: dict[str, str], settings: str = "") -> Path:
    """A sources.yaml listing ``feeds`` (id -> URL), data and site beside it, and ``settings``
    (extra lines of the settings block, indented by two spaces)."""
    lines = [
        "settings:",
        f"  data_dir: {path.parent / 'data'}",
        f"  output_dir: {path.parent / 'site'}",
        "  fetch:",
        "    timeout: 60",
        *(f"  {line}" for line in settings.splitlines() if line.strip()),
        "sources:" if feeds else "sources: []",
    ]
    for source_id, url in feeds.items():
        lines += [f"  - id: {source_id}", f"    name: {source_id.title()}", f"    url: {url}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class Process:
    """A running ``python -m aggregator``; its stdout and stderr go to files."""

    popen: subprocess.Popen[bytes]
    out: Path
    err: Path

    def wait(self, timeout: float = 120) -> int:
        return self.popen.wait(timeout)

    @property
    def stdout(self) -> str:
        return self.out.read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        """Kill it if it still runs (the end of a failed test)."""
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(30)


def aggregator(
    args: Sequence[str],
    folder: Path,
    *,
    env: dict[str, str] | None = None,
    new_session: bool = False,
) -> Process:
    """Start ``python -m aggregator ARGS`` in ``folder``: this checkout's package, loopback
    feeds allowed, no AGGREGATOR_* variable of the caller's shell."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    clean.update(PYTHONPATH=str(ROOT), AGGREGATOR_ALLOW_PRIVATE_NETWORKS="1", **(env or {}))
    name = f"{time.monotonic_ns()}"
    out, err = folder / f"{name}.out", folder / f"{name}.err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        popen = subprocess.Popen(
            [sys.executable, "-m", "aggregator", *args],
            cwd=folder,
            env=clean,
            stdout=stdout,
            stderr=stderr,
            start_new_session=new_session,
        )
    return Process(popen, out, err)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def ignores_sigint(pid: int) -> bool:
    """Whether process ``pid`` ignores SIGINT (its SigIgn mask in /proc); False once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:"))
    return bool(int(mask, 16) & (1 << (signal.SIGINT - 1)))
