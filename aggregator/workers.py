"""Worker processes with a deadline per call, shared by extraction and feed parsing.

A page or feed that makes a parser hang costs that one call: past its deadline the pool's
processes are killed and the pool replaced, so later calls run on fresh workers. One call more
than there are processes is sent to the pool, so a process that finishes a call finds the next
waiting instead of idling while this process hands it over; a deadline still counts a call's
own run time, not its wait behind others: its clock starts when a call ahead of it is done.

Workers die with the process that made them, even one killed with SIGKILL: each watches it and
exits when it is gone. Without that they would wait on their queues for ever, holding the
forkserver (and with it multiprocessing's resource tracker) alive.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import multiprocessing.context
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from aggregator.errors import WorkerError

T = TypeVar("T")

# Modules the forkserver imports once, so a replacement worker starts without importing them. One
# forkserver serves every pool of the process, so it preloads what all of them need.
PRELOAD = [
    "aggregator.extract",
    "aggregator.extract_worker",
    "aggregator.parse",
    "aggregator.crawl.items",
]


def _die_with(parent: int) -> None:
    """Pool initializer: a thread that ends this worker as soon as ``parent`` is gone.

    It also ignores SIGINT: Ctrl-C reaches every process of the terminal's process group, and
    the parent, which finishes its current stage on the first one, still needs its workers.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        handle: int | None = os.pidfd_open(parent)  # Linux: readable once the process exits
    except ProcessLookupError:
        os._exit(0)
    except (AttributeError, OSError):
        handle = None

    def watch() -> None:
        if handle is not None:
            select.select([handle], [], [])
        else:  # no pidfd: ask every second (a reused pid keeps a worker a little longer)
            while _alive(parent):
                time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _context() -> multiprocessing.context.BaseContext:
    """forkserver where available: forking a threaded (asyncio) process can deadlock."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


def prestart() -> None:
    """Start the forkserver now, without waiting for it: its imports (PRELOAD, about half a
    second) then overlap the caller's own start-up (its imports, the sources, the database)
    instead of delaying the first worker call. The pools fork their workers from it later."""
    if _context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


class WorkerPool:
    """A lazily started, reusable process pool whose calls have deadlines."""

    def __init__(self, workers: int = 2):
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._sent = threading.BoundedSemaphore(workers + 1)  # calls in the pool
        self._running = threading.BoundedSemaphore(workers)  # calls whose clock runs

    def run(self, func: Callable[..., T], *args: Any, timeout: float, **kwargs: Any) -> T:
        """func(*args, **kwargs) in a worker; WorkerError when it overruns ``timeout`` or dies.

        The call is sent first, then waits for one of ``workers`` running places before its
        deadline starts: the one call sent beyond them waits in the pool's queue until a process
        is free, which is when a call ahead of it ends (its clock then starts a little after
        the call itself does, never before)."""
        with self._sent:
            for _attempt in range(2):
                pool = self._get()
                future = pool.submit(func, *args, **kwargs)
                with self._running:
                    try:
                        return future.result(timeout=timeout)
                    except concurrent.futures.TimeoutError:
                        self._discard(pool)
                        raise WorkerError(f"took longer than {timeout:g} s") from None
                    except BrokenProcessPool:
                        # A worker died, or another call's timeout tore the pool down under us:
                        # then this call is not to blame, so it gets one more try.
                        if self._discard(pool):
                            raise WorkerError("crashed its worker process") from None
        raise WorkerError("crashed its worker process")

    def shutdown(self) -> None:
        """Stop the worker processes (at exit, or in tests); the next call starts new ones."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _get(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=_context(),
                    initializer=_die_with,
                    initargs=(os.getpid(),),
                )
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> bool:
        """Kill a pool's workers (one may be stuck) and forget it; False if already replaced."""
        with self._lock:
            if self._pool is not pool:
                return False
            self._pool = None
        # The executor cannot cancel a running call, so its processes are killed directly.
        for process in dict(getattr(pool, "_processes", None) or {}).values():
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        return True


def cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container's cpuset sets)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


# One pool for every CPU-bound step of a crawl (parsing feeds, their items' text, extracting
# pages), a process per core, with one call more waiting in the pool (see WorkerPool.run) so
# that no core idles while results travel back. Two pools would hold more processes' memory
# and still leave a core idle between calls.
WORKERS = cores()
SHARED = WorkerPool(WORKERS)
