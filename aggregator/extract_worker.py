"""extract_page with a deadline, in the worker processes that feed parsing uses too.

A page that makes the extractor hang or blow up costs that one page: past ``timeout`` the
workers are killed and replaced (workers.py) and the page counts as one without text.

This module imports no extractor: the process that sends the pages (the crawl's) only pickles
them, and the workers' forkserver has imported aggregator.extract already (workers.PRELOAD).
trafilatura and what it brings (htmldate, courlan, justext) took 0.07 CPU s and 7 MB in a
crawl's own process, which had no use for them.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from aggregator.errors import WorkerError
from aggregator.records import PAGE_FIELDS, ExtractedPage
from aggregator.workers import SHARED

log = logging.getLogger(__name__)

_workers = SHARED  # the pool feed parsing uses too


def extract_in_worker(
    html: bytes,
    url: str,
    timeout: float,
    want: Collection[str] = PAGE_FIELDS,
    *,
    byline: bool = True,
) -> ExtractedPage | None:
    """extract.extract_page in a worker process; None on timeout or error (the pool is
    replaced)."""
    try:
        return _workers.run(_extract_page, html, url, frozenset(want), byline, timeout=timeout)
    except WorkerError as exc:
        log.warning("extraction of %s %s; gave up", url or "<page>", exc, extra={"url": url})
    except Exception as exc:  # e.g. the arguments could not be sent to the worker
        log.warning("extraction of %s failed: %s", url or "<page>", exc, extra={"url": url})
    return None


def _extract_page(
    html: bytes, url: str, want: frozenset[str], byline: bool
) -> ExtractedPage | None:
    """Runs in a worker, where aggregator.extract is loaded already."""
    from aggregator.extract import extract_page

    return extract_page(html, url, want=want, byline=byline)


def shutdown_workers() -> None:
    """Stop the worker processes (at exit, or in tests); the next call starts new ones."""
    _workers.shutdown()
