"""The daemon: each source crawled when it is due, the digest at the times of a cron expression.

apscheduler 3 keeps the times; the jobs call the same pipeline functions as cron and the CLI.

- The crawl job wakes when the earliest enabled source is next due (the ``next_fetch`` each
  crawl stores: interval, feed TTL, backoff, Retry-After), never sooner than
  ``crawl_min_wait_minutes`` after the last crawl and never later than
  ``crawl_max_wait_minutes``. It crawls the sources due then.
- The digest (cluster, summarise, render, then pruning past ``retention_days``) runs at the
  times of ``digest_cron`` read in ``timezone`` (or every ``digest_interval_minutes``, the
  older setting), and once at start.
- The jobs run one at a time on the scheduler's thread, so they never overlap in the process;
  each also takes the run lock, so none overlaps a run of another process or machine (it is
  skipped, with a warning, and tried at its next time). A job that could not start on time runs
  late by at most ``misfire_grace_minutes``; missed times are coalesced into one run.
- SIGTERM or SIGINT: the running stage finishes and is stored, the rest of the job is skipped,
  and the daemon exits 0. A second signal exits at once (128 + the signal's number); what the
  killed stage had not committed is simply not there, as after a kill -9.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import zoneinfo
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.executors.debug import DebugExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from aggregator.crawl.due import DUE_SLACK
from aggregator.cron import parse_cron
from aggregator.errors import Interrupted, RunLockedError
from aggregator.healthfile import FAILED, STOPPED, Note, Recorder, health_path
from aggregator.pipeline import (
    Window,
    crawl_counts,
    crawl_stage,
    digest,
    digest_counts,
    go_on,
    keep_run,
    prune_stage,
    run_lock,
)
from aggregator.records import FetchState
from aggregator.settings import Settings
from aggregator.sources.load import Config
from aggregator.store.storage import Storage
from aggregator.times import utcnow

log = logging.getLogger("aggregator.schedule")

LOCKED, SKIPPED = "locked", "skipped"  # job outcomes beside healthfile's ok, failed, stopped
POLL = 0.2  # seconds between the main thread's looks for a signal


def next_crawl_time(
    config: Config,
    states: dict[str, FetchState],
    now: datetime,
    *,
    first: bool = False,
) -> datetime:
    """When the crawl job should wake next: the earliest due time of an enabled source (never
    fetched: now; gone: never), no sooner than crawl_min_wait_minutes from ``now`` (``first``:
    from ``now`` itself) and no later than crawl_max_wait_minutes."""
    settings = config.settings
    low = now if first else now + timedelta(minutes=settings.crawl_min_wait_minutes)
    high = now + timedelta(minutes=settings.crawl_max_wait_minutes)
    due: list[datetime] = []
    for source in config.enabled_sources:
        state = states.get(source.id, FetchState(source_id=source.id)).for_url(source.url)
        if not state.gone_at(source.url):
            due.append(state.next_fetch or now)
    return min(max(min(due, default=high), low), high)


class Cycle:
    """The daemon's two jobs and what they share: the config, the database, the clock."""

    def __init__(
        self,
        config: Config,
        storage: Storage,
        out_dir: Path,
        *,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.config = config
        self.storage = storage
        self.out_dir = out_dir
        self.clock = clock
        self.stopping = threading.Event()  # set on SIGTERM/SIGINT: finish the stage, no more
        self.next_crawl = clock()  # the crawl job's next time, planned after each crawl

    def plan_crawl(self, now: datetime, *, first: bool = False) -> datetime:
        """The crawl job's next time from the stored due times (see next_crawl_time)."""
        try:
            states = self.storage.fetch_states()
        except Exception as exc:  # the database is down: look again at the latest bound
            log.error("cannot read the sources' due times (%s); crawling at the latest", exc)
            return now + timedelta(minutes=self.config.settings.crawl_max_wait_minutes)
        return next_crawl_time(self.config, states, now, first=first)

    def crawl(self) -> str:
        """Crawl the sources that are due; plan the next crawl. The outcome (see _job)."""

        def body(note: Note, now: datetime) -> None:
            report = crawl_stage(self.config, self.storage, now)
            counts = crawl_counts(report)
            note(counts, failed=report.all_failed)
            log.info(
                "crawl: %d sources due, %d new articles, %d failed, %d not due",
                len(report.outcomes),
                report.new_articles,
                report.failed,
                len(report.skipped),
                extra={"job": "crawl", **counts},
            )

        try:
            return self._job("crawl", body)
        finally:
            self.next_crawl = self.plan_crawl(self.clock())
            when = self.next_crawl.isoformat(timespec="seconds")
            log.info("crawl: next at %s", when, extra={"job": "crawl", "next": when})

    def digest(self) -> str:
        """Cluster, summarise and render the window ending now. The outcome (see _job)."""

        def body(note: Note, now: datetime) -> None:
            window = Window.last(now, self.config.settings.window_hours)
            clustered, summarised, rendered = digest(
                self.config, self.storage, window, self.out_dir, stop=self.stopping.is_set
            )
            go_on(self.stopping.is_set, "pruning")
            pruned = prune_stage(self.storage, self.config.settings, now)
            counts = {**digest_counts(clustered, summarised, rendered), "pruned": pruned}
            note(counts)
            log.info(
                "digest: %d stories on the page (%d summaries written) -> %s; %d articles pruned",
                rendered.stories,
                summarised.written,
                rendered.path,
                pruned,
                extra={"job": "digest", **counts},
            )

        return self._job("digest", body)

    def _job(self, name: str, body: Callable[[Note, datetime], None]) -> str:
        """Run ``body`` under the run lock, noting how it went in the health file; never
        raises (a failed job must not stop the daemon). Its outcome: ok, failed, stopped,
        locked (another run holds the lock) or skipped (a stop was asked for before it)."""
        if self.stopping.is_set():
            log.info("%s skipped: stopping", name, extra={"job": name})
            return SKIPPED
        health = Recorder(health_path(self.config), self.clock)
        try:
            with run_lock(self.config, self.storage):
                try:
                    with health.job(name) as note:
                        body(note, self.clock())
                finally:
                    health.write()
                    keep_run(self.storage, health)
        except RunLockedError as exc:
            log.warning("%s skipped: %s", name, exc, extra={"job": name})
            return LOCKED
        except Interrupted as exc:
            log.warning("%s: %s", name, exc, extra={"job": name})
            return STOPPED
        except Exception:
            log.exception("%s failed; its next time will try again", name, extra={"job": name})
            return FAILED
        return health.results[-1].outcome


class DueTrigger(BaseTrigger):  # type: ignore[misc]
    """Fires at the time the cycle planned after its last crawl (Cycle.next_crawl), at least
    ``min_wait`` after the previous fire time, so the scheduler always moves forward."""

    def __init__(self, cycle: Cycle, min_wait: timedelta):
        self.cycle = cycle
        self.min_wait = min_wait

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        wake = self.cycle.next_crawl
        if previous_fire_time is not None:
            wake = max(wake, previous_fire_time + self.min_wait)
        return wake

    def __str__(self) -> str:
        return "when the earliest source is due"


def digest_trigger(settings: Settings) -> BaseTrigger:
    """digest_cron in timezone; every digest_interval_minutes when that older setting is set."""
    zone = zoneinfo.ZoneInfo(settings.timezone)
    if settings.digest_interval_minutes is not None:
        return IntervalTrigger(minutes=settings.digest_interval_minutes, timezone=zone)
    return CronTrigger(**parse_cron(settings.digest_cron).trigger_fields(), timezone=zone)


def build_scheduler(cycle: Cycle, *, start: datetime | None = None) -> BackgroundScheduler:
    """The crawl job at the sources' due times, the digest job on its schedule and at
    ``start``; coalesced, one instance each, run one at a time on the scheduler's thread."""
    settings = cycle.config.settings
    first = start or cycle.clock()
    scheduler = BackgroundScheduler(timezone=UTC, executors={"default": DebugExecutor()})
    every_job: dict[str, Any] = {
        "coalesce": True,
        "max_instances": 1,
        "misfire_grace_time": round(settings.misfire_grace_minutes * 60),
    }
    cycle.next_crawl = cycle.plan_crawl(first, first=True)
    min_wait = timedelta(minutes=settings.crawl_min_wait_minutes)
    scheduler.add_job(
        cycle.crawl,
        DueTrigger(cycle, min_wait),
        id="crawl",
        name="crawl",
        next_run_time=cycle.next_crawl,
        **every_job,
    )
    scheduler.add_job(
        cycle.digest,
        digest_trigger(settings),
        id="digest",
        name="digest",
        next_run_time=first,
        **every_job,
    )
    return scheduler


def next_digest(settings: Settings, now: datetime) -> datetime | None:
    """The digest's first scheduled time after ``now`` (None: never)."""
    fire: datetime | None = digest_trigger(settings).get_next_fire_time(None, now)
    return fire


class StopSignals:
    """SIGTERM and SIGINT handlers for the daemon: the first asks the cycle to stop after the
    current stage; the second ends the process at once."""

    def __init__(self, cycle: Cycle):
        self.cycle = cycle
        self.received: list[int] = []

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        # Only what is safe inside a signal handler: no logging, no lock but the event's (which
        # the main thread never holds: it polls, and the scheduler thread only reads it).
        self.received.append(signum)
        if len(self.received) > 1:
            os._exit(128 + signum)
        self.cycle.stopping.set()

    @contextmanager
    def installed(self) -> Iterator[None]:
        previous: dict[signal.Signals, Any] = {}
        for kind in (signal.SIGTERM, signal.SIGINT):
            previous[kind] = signal.signal(kind, self.handle)
        try:
            yield
        finally:
            for kind, handler in previous.items():
                signal.signal(kind, handler)

    def name(self) -> str:
        return signal.Signals(self.received[0]).name if self.received else "stop"


def run_forever(cycle: Cycle, scheduler: BackgroundScheduler) -> None:
    """Run the scheduler until SIGTERM or SIGINT; return once the current stage has finished."""
    signals = StopSignals(cycle)
    with signals.installed():
        scheduler.start()
        while not cycle.stopping.is_set():
            time.sleep(POLL)
        log.warning(
            "%s: stopping after the current stage (a second signal stops at once)",
            signals.name(),
        )
        scheduler.shutdown(wait=True)  # waits for the job on the scheduler's thread
    log.warning("stopped")


def run_first(cycle: Cycle) -> dict[str, str]:
    """``--once``: what the daemon runs when it starts (the crawl, when a source is due, then
    the digest), under the same signal handling; each job's outcome."""
    signals = StopSignals(cycle)
    outcomes: dict[str, str] = {}
    with signals.installed():
        now = cycle.clock()
        cycle.next_crawl = cycle.plan_crawl(now, first=True)
        if cycle.next_crawl <= now + DUE_SLACK:
            outcomes["crawl"] = cycle.crawl()
        outcomes["digest"] = cycle.digest()
    return outcomes
