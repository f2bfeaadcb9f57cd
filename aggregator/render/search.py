"""Static search with Pagefind: its binary (shipped by the ``pagefind[extended]`` package)
indexes the story pages of a new release before it goes live, writing the index and Pagefind's
own interface into the release's ``pagefind/`` folder. The pages load it through one script of
ours (``search.js``), so nothing is fetched from elsewhere and, without JavaScript, the search
box is simply absent. Without the binary the site is published without search."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

SEARCH_SCRIPT = "search.js"  # the pages' only script: it loads Pagefind's interface
BUNDLE = "pagefind"  # the folder of the index and Pagefind's interface, in the site
INDEXED = "stories/*.html"  # every story ever published has its page there
INDEX_TIMEOUT = 600.0  # seconds: Pagefind indexes thousands of pages a second


def search_binary() -> Path | None:
    """The Pagefind binary: PAGEFIND_BINARY_PATH, else the one the pagefind package ships,
    else one on PATH; None when there is none that can run."""
    found: Path | None
    try:
        from pagefind.service import get_executable
    except ImportError:
        which = shutil.which("pagefind_extended") or shutil.which("pagefind")
        found = Path(which) if which else None
    else:
        found = get_executable()
    if found is None or not found.is_file() or not os.access(found, os.X_OK):
        return None
    return found


def build_index(binary: Path, site: Path) -> bool:
    """Index the story pages under ``site`` into ``site/pagefind``; False (logged, the site
    published without search) when Pagefind fails."""
    command = [str(binary), "--site", str(site), "--glob", INDEXED, "--output-subdir", BUNDLE]
    try:
        subprocess.run(
            [*command, "--silent"],
            check=True,
            capture_output=True,
            timeout=INDEX_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.CalledProcessError as exc:
        problem = (exc.stderr or exc.stdout or b"").decode("utf-8", "replace").strip()
        reason = f"exit {exc.returncode}: {problem[-500:] or 'no message'}"
    except subprocess.TimeoutExpired:
        reason = f"it took over {INDEX_TIMEOUT:g} s"
    except OSError as exc:
        reason = str(exc)
    else:
        return True
    log.warning("site search left out: Pagefind (%s) failed on %s: %s", binary, site, reason)
    shutil.rmtree(site / BUNDLE, ignore_errors=True)
    return False
