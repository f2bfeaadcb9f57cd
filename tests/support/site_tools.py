"""The real tools the site checks run: Chromium (through Playwright), the Nu Html Checker (vnu.jar
on Java), and a loopback server that serves a built site.

``make browser-deps`` installs them; without them the checks skip, and fail when ``CI`` is set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tests.support.loopback import LoopbackServer, Response

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("AGGREGATOR_CHROMIUM", "/usr/bin/chromium"))
VNU_JAR = Path(
    os.environ.get("AGGREGATOR_VNU_JAR", ROOT / ".tools/node_modules/vnu-jar/build/dist/vnu.jar")
)
# Playwright's own browser download cannot run here: it drives the system Chromium, kept from
# reaching out on its own (updates, sync, QUIC probes) so every request seen is the page's.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
ARTIFACTS = Path(os.environ.get("AGGREGATOR_TEST_ARTIFACTS", ROOT / "test-artifacts"))
SCREENSHOTS = ARTIFACTS / "screenshots"
taken: list[Path] = []  # the screenshots of this session, named in pytest's closing summary
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
INSTALL_HINT = "run `make browser-deps` (as root) to install it"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",  # the search box's script and Pagefind's modules
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
    ".opml": "text/x-opml; charset=utf-8",
}


def missing(problem: str) -> None:
    """A tool is absent: skip the test, or fail it in CI, where .ci/run installs every tool."""
    message = f"{problem}; {INSTALL_HINT}"
    if IN_CI:
        pytest.fail(f"{message} (CI must run the site checks)")
    pytest.skip(message)


def require_chromium() -> Path:
    for package in ("playwright", "axe_playwright_python"):
        try:
            __import__(package)
        except ImportError:
            missing(f"the Python package {package} is not installed (the dev extra)")
    if not os.access(CHROMIUM, os.X_OK):
        missing(f"Chromium not found at {CHROMIUM}")
    return CHROMIUM


def require_vnu() -> tuple[str, Path]:
    java = shutil.which("java")
    if java is None:
        missing("java is not on PATH (the Nu Html Checker runs on it)")
    if not VNU_JAR.is_file():
        missing(f"the Nu Html Checker is not at {VNU_JAR}")
    assert java is not None
    return java, VNU_JAR


def site_files(root: Path) -> dict[str, bytes]:
    """Every file of a published site (a link to its release is followed): path -> bytes."""
    root = root.resolve()
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def write_site(files: Mapping[str, bytes], root: Path) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def serve(files: Mapping[str, bytes]) -> LoopbackServer:
    """A loopback server for a site, each file with its content type; "/" is the front page."""
    routes = {
        f"/{name}": Response(body=data, headers={"Content-Type": _content_type(name)})
        for name, data in files.items()
    }
    if "/index.html" in routes:
        routes["/"] = routes["/index.html"]
    return LoopbackServer(dict(routes))


def _content_type(name: str) -> str:
    return CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")


def nu_check(paths: Sequence[Path]) -> dict[Path, list[str]]:
    """The Nu Html Checker's errors per file (.html, and .css by its CSS checker), all files in
    one run: the JVM starts slowly."""
    java, jar = require_vnu()
    run = subprocess.run(
        [java, "-jar", str(jar), "--errors-only", "--also-check-css", "--format", "json"]
        + [str(p) for p in paths],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        messages = json.loads(run.stderr or run.stdout)["messages"]
    except (ValueError, KeyError) as exc:
        raise AssertionError(
            f"vnu gave no JSON (exit {run.returncode}): {run.stderr[:2000]}"
        ) from exc
    errors: dict[Path, list[str]] = {Path(p).resolve(): [] for p in paths}
    for message in messages:
        url = message.get("url", "")
        where = Path(url.removeprefix("file:")).resolve() if url else Path("?")
        line = message.get("lastLine", "?")
        text = f"{where.name}:{line}: {message.get('type')}: {message.get('message')}"
        errors.setdefault(where, []).append(text)
    return errors
