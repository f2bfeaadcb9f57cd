"""The long-running daemon: apscheduler calls the same pipeline functions as cron and the CLI."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from apscheduler.schedulers.blocking import BlockingScheduler

from aggregator.errors import RunLockedError
from aggregator.pipeline import Window, crawl_stage, digest, prune_stage, run_lock
from aggregator.sources.load import Config
from aggregator.store.storage import Storage
from aggregator.times import utcnow

log = logging.getLogger("aggregator.schedule")


class Cycle:
    """Crawl and digest jobs that never overlap: one run at a time, in or across processes."""

    def __init__(self, config: Config, storage: Storage, out_dir: Path):
        self.config = config
        self.storage = storage
        self.out_dir = out_dir
        self._busy = threading.Lock()
        self.wait_seconds = 3600

    def _exclusive(self, name: str, job: Callable[[datetime], None]) -> None:
        # jobs in this process queue behind each other; another process's run is skipped
        if not self._busy.acquire(timeout=self.wait_seconds):
            log.warning("%s skipped: another job ran for over %d s", name, self.wait_seconds)
            return
        try:
            with run_lock(self.config):
                job(utcnow())
        except RunLockedError as exc:
            log.warning("%s skipped: %s", name, exc)
        except Exception:  # a failed cycle must not stop the daemon
            log.exception("%s failed; the next run will try again", name)
        finally:
            self._busy.release()

    def crawl(self) -> None:
        def job(now: datetime) -> None:
            report = crawl_stage(self.config, self.storage, now)
            log.info(
                "crawl: %d sources, %d new articles, %d failed",
                len(report.outcomes),
                report.new_articles,
                report.failed,
            )

        self._exclusive("crawl", job)

    def digest(self) -> None:
        def job(now: datetime) -> None:
            window = Window.last(now, self.config.settings.window_hours)
            _, summarised, rendered = digest(self.config, self.storage, window, self.out_dir)
            pruned = prune_stage(self.storage, self.config.settings, now)
            log.info(
                "digest: %d stories on the page (%d summaries written) -> %s; %d articles pruned",
                rendered.stories,
                summarised.written,
                rendered.path,
                pruned,
            )

        self._exclusive("digest", job)


def build_scheduler(cycle: Cycle, *, start: datetime | None = None) -> BlockingScheduler:
    """Crawl every crawl_interval_minutes and digest every digest_interval_minutes."""
    settings = cycle.config.settings
    scheduler = BlockingScheduler(timezone="UTC")
    first = start or utcnow()
    common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 300}
    scheduler.add_job(
        cycle.crawl,
        "interval",
        minutes=settings.crawl_interval_minutes,
        next_run_time=first,
        id="crawl",
        **common,
    )
    scheduler.add_job(
        cycle.digest,
        "interval",
        minutes=settings.digest_interval_minutes,
        next_run_time=first,
        id="digest",
        **common,
    )
    return scheduler
