"""The daemon: apscheduler jobs call the same pipeline; one run at a time."""

from __future__ import annotations

import threading
from pathlib import Path

import feedparser

from aggregator.demo.server import DemoServer, demo_config
from aggregator.pipeline import run_lock
from aggregator.schedule import Cycle, build_scheduler
from aggregator.store.storage import Storage


def test_crawl_and_digest_jobs_build_the_site(tmp_path: Path) -> None:
    out = tmp_path / "site"
    with DemoServer() as srv, Storage(f"sqlite:///{tmp_path / 's.db'}") as storage:
        config = demo_config(srv.base_url, out_dir=out, data_dir=tmp_path / "data")
        cycle = Cycle(config, storage, out)
        cycle.crawl()
        assert storage.count_articles() > 30
        cycle.digest()
    assert not feedparser.parse((out / "atom.xml").read_bytes()).bozo
    assert len(list((out / "stories").glob("*.html"))) >= 5


def test_jobs_never_overlap_and_skip_while_another_process_runs(tmp_path: Path) -> None:
    with DemoServer() as srv, Storage(f"sqlite:///{tmp_path / 's.db'}") as storage:
        config = demo_config(srv.base_url, out_dir=tmp_path / "site", data_dir=tmp_path / "d")
        cycle = Cycle(config, storage, tmp_path / "site")
        with run_lock(config):  # as if a cron `aggregator run` were in progress
            cycle.crawl()
        assert storage.count_articles() == 0  # skipped, nothing written
        # in one process the jobs queue behind each other instead of running together
        cycle._busy.acquire()
        cycle.wait_seconds = 0.2
        worker = threading.Thread(target=cycle.crawl)
        worker.start()
        worker.join(5)
        cycle._busy.release()
        assert storage.count_articles() == 0


def test_scheduler_intervals_and_single_instance(tmp_path: Path) -> None:
    with DemoServer() as srv, Storage(f"sqlite:///{tmp_path / 's.db'}") as storage:
        config = demo_config(srv.base_url, out_dir=tmp_path / "site", data_dir=tmp_path)
        scheduler = build_scheduler(Cycle(config, storage, tmp_path / "site"))
        jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"crawl", "digest"}
    settings = config.settings
    assert jobs["crawl"].trigger.interval.total_seconds() == settings.crawl_interval_minutes * 60
    assert jobs["digest"].trigger.interval.total_seconds() == settings.digest_interval_minutes * 60
    assert all(job.max_instances == 1 and job.coalesce for job in jobs.values())
