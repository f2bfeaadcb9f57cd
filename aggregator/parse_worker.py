"""parse_feed with a deadline: parsing runs in a reusable worker process.

A feed whose text makes a parser's regular expressions crawl, or whose size makes parsing take
minutes, costs that one feed: after ``timeout`` seconds the worker is killed, the pool replaced
and ``NotAFeedError("parsing took longer than N s")`` raised, which the crawl reports like any
other unreadable feed. Same pattern as ``aggregator.extract.extract_in_worker``.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import multiprocessing.context
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime

from aggregator.parse import NotAFeedError, parse_feed
from aggregator.records import ParsedFeed

log = logging.getLogger(__name__)

WORKERS = 2  # parsing is CPU-bound; the crawl overlaps it with network I/O
DEFAULT_TIMEOUT = 10.0

_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()
# At most WORKERS calls in flight, so a call's deadline counts its own run time, not the time
# spent queued behind other feeds.
_slots = threading.BoundedSemaphore(WORKERS)


def parse_feed_bounded(
    body: bytes,
    *,
    url: str = "",
    content_type: str = "",
    max_items: int = 500,
    now: datetime | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> ParsedFeed:
    """parse_feed in a worker process; NotAFeedError when it takes longer than ``timeout``."""
    with _slots:
        for _attempt in range(2):
            pool = _get_pool()
            future = pool.submit(
                parse_feed, body, url=url, content_type=content_type, max_items=max_items, now=now
            )
            try:
                return future.result(timeout=timeout)
            except concurrent.futures.TimeoutError:
                log.warning("parsing %s took over %.1f s; gave up", url or "<feed>", timeout)
                _discard_pool(pool)
                raise NotAFeedError(f"parsing took longer than {timeout:g} s") from None
            except BrokenProcessPool:
                # A worker died (out of memory, killed), or another call's timeout tore the
                # pool down under us: then the feed itself is not to blame, so try once more.
                if _discard_pool(pool):
                    log.warning("parsing %s crashed its worker process", url or "<feed>")
                    raise NotAFeedError("parsing crashed its worker process") from None
    raise NotAFeedError("parsing crashed its worker process")


def _get_pool() -> ProcessPoolExecutor:
    """The shared worker pool, created on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(max_workers=WORKERS, mp_context=_mp_context())
        return _pool


def _mp_context() -> multiprocessing.context.BaseContext:
    """forkserver where available: forking a threaded (asyncio) process can deadlock."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        # One forkserver serves the whole process (extraction workers too): preload both.
        ctx.set_forkserver_preload(["aggregator.extract", "aggregator.parse_worker"])
        return ctx
    return multiprocessing.get_context("spawn")


def _discard_pool(pool: ProcessPoolExecutor) -> bool:
    """Kill a pool's workers (one may be stuck) and forget it; False if already replaced."""
    global _pool
    with _pool_lock:
        if _pool is not pool:
            return False
        _pool = None
    # The executor cannot cancel a running call, so its processes are killed directly.
    workers = dict(getattr(pool, "_processes", None) or {})
    for process in workers.values():
        process.kill()
    pool.shutdown(wait=False, cancel_futures=True)
    return True


def shutdown_workers() -> None:
    """Stop the worker processes (at exit, or in tests); the next call starts new ones."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)
