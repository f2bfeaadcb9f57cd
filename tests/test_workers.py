"""Worker processes die with the process that made them, even one killed with SIGKILL; a
call's deadline counts its own run time, not its wait behind other calls.

Before: after kill -9 of `aggregator schedule` its forkserver, the parse and extraction workers
and multiprocessing's resource tracker lived on for ever (the workers held the forkserver's
pipe open, waiting on queues no one would write to again).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from aggregator.errors import WorkerError
from aggregator.workers import WorkerPool
from tests.support.loopback import LoopbackServer, Response
from tests.support.processes import descendants

FEED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>
<item><title>Harbour bridge reopens</title><link>{page}</link>
<description>Short teaser.</description></item></channel></rss>"""
PAGE = b"<html><head><title>Bridge</title></head><body><article>" + b"<p>Words here. </p>" * 60


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie is dead, waiting for its parent to notice


def test_no_worker_outlives_a_killed_scheduler(tmp_path: Path) -> None:
    with LoopbackServer() as srv:
        srv.routes["/feed.xml"] = Response(body=FEED.replace(b"{page}", srv.url("/a/1").encode()))
        srv.routes["/a/1"] = Response(body=PAGE, headers={"Content-Type": "text/html"})
        config = tmp_path / "sources.yaml"
        config.write_text(
            f"settings:\n  data_dir: {tmp_path / 'data'}\n  output_dir: {tmp_path / 'site'}\n"
            f"sources:\n  - id: wire\n    name: Wire\n    url: {srv.url('/feed.xml')}\n"
        )
        env = {**os.environ, "AGGREGATOR_ALLOW_PRIVATE_NETWORKS": "1"}
        daemon = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "schedule", "--config", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            workers: list[int] = []
            # the resource tracker, the forkserver and a worker (parsing and extraction share
            # the pool), with the article page fetched: extraction has been under way
            while len(workers) < 3 or not any(r.path == "/a/1" for r in srv.requests):
                assert daemon.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
                workers = descendants(daemon.pid)
        finally:
            daemon.send_signal(signal.SIGKILL)
            daemon.wait()
    deadline = time.monotonic() + 15
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [pid for pid in workers if alive(pid)]
    for pid in survivors:  # do not leave them behind for the rest of the suite either
        os.kill(pid, signal.SIGKILL)
    assert survivors == []


def test_prestart_starts_the_forkserver_the_pools_fork_from(tmp_path: Path) -> None:
    """aggregator crawl starts the forkserver first thing, so its imports overlap the crawl's
    own start-up; the workers of the shared pool are then forked from that same server."""
    code = (
        "import os\n"
        "from multiprocessing import forkserver\n"
        "from aggregator.workers import SHARED, prestart\n"
        "prestart()\n"
        "server = forkserver._forkserver._forkserver_pid\n"
        "assert server is not None, 'no forkserver'\n"
        "worker = SHARED.run(os.getpid, timeout=60)\n"
        "with open(f'/proc/{worker}/stat') as stat:\n"
        "    parent = int(stat.read().rsplit(')', 1)[1].split()[1])\n"
        "print(server, parent, worker, os.getpid())\n"
        "SHARED.shutdown()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    server, parent, worker, me = map(int, proc.stdout.split())
    assert parent == server  # forked by the prestarted server, not a second one
    assert worker not in (server, me)


def test_the_pool_and_the_clustering_threads_count_the_cores_the_process_may_use() -> None:
    # A container's cpuset shows in the CPU affinity, not in os.cpu_count(): a crawl given one
    # core runs one worker (and sends it one call ahead), not one per core of the host, and
    # clustering one thread.
    root = Path(__file__).resolve().parents[1]

    def printed(name: str, cores: set[int] | None) -> int:
        def pin() -> None:
            if cores is not None:
                os.sched_setaffinity(0, cores)

        module, _, value = name.rpartition(".")
        out = subprocess.run(
            [sys.executable, "-c", f"from {module} import {value}; print({value})"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            preexec_fn=pin,
        )
        return int(out.stdout)

    available = os.sched_getaffinity(0)
    assert printed("aggregator.workers.WORKERS", None) == len(available)
    assert printed("aggregator.workers.WORKERS", {min(available)}) == 1
    threads = "aggregator.cluster.neighbours._WORKERS"
    assert printed(threads, None) == min(2, len(available))
    assert printed(threads, {min(available)}) == 1


def test_a_call_sent_behind_a_running_one_is_not_charged_for_its_wait() -> None:
    """The pool takes one call more than it has processes, so that a process never waits for
    the next; that call waits in the pool's queue, and its deadline starts when it can run."""
    pool = WorkerPool(1)
    try:
        pool.run(time.sleep, 0, timeout=30)  # the process is up
        with ThreadPoolExecutor(2) as threads:
            slow = threads.submit(pool.run, time.sleep, 1.5, timeout=10)
            time.sleep(0.3)  # the slow call is running
            sent = time.monotonic()
            quick = threads.submit(pool.run, time.sleep, 0.2, timeout=1.0)
            assert quick.result() is None  # no WorkerError: 1.2 s of waiting, 0.2 s of its own
            assert time.monotonic() - sent > 1.0  # it did wait behind the slow one
            assert slow.result() is None
    finally:
        pool.shutdown()


def test_a_hung_call_is_stopped_and_the_call_waiting_behind_it_still_runs() -> None:
    pool = WorkerPool(1)
    try:
        pool.run(time.sleep, 0, timeout=30)
        with ThreadPoolExecutor(2) as threads:
            hung = threads.submit(pool.run, time.sleep, 60, timeout=0.5)
            time.sleep(0.1)
            behind = threads.submit(pool.run, divmod, 7, 2, timeout=10)
            with pytest.raises(WorkerError, match=r"took longer than 0\.5 s"):
                hung.result()
            assert behind.result() == (3, 1)  # sent again, to the pool that replaced the first
    finally:
        pool.shutdown()
