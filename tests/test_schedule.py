"""The daemon: crawls when sources are due, digests at cron times in a time zone, one job at a
time, and stops cleanly on a signal. The signal tests run real processes and send real signals."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from apscheduler.executors.debug import DebugExecutor
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from aggregator.cli.main import main
from aggregator.cron import parse_cron
from aggregator.demo.server import DemoServer, demo_config
from aggregator.errors import ConfigError, Interrupted
from aggregator.pipeline import Window, digest, run_lock
from aggregator.records import FetchState
from aggregator.schedule import (
    Cycle,
    DueTrigger,
    build_scheduler,
    digest_trigger,
    next_crawl_time,
)
from aggregator.settings import Settings
from aggregator.sources.load import Config, Source, load_config
from aggregator.store.storage import Storage
from tests.support.loopback import LoopbackServer, Response
from tests.support.processes import (
    HeldFeed,
    Process,
    aggregator,
    descendants,
    feed_xml,
    ignores_sigint,
    wait_for,
    write_config,
)

FRIDAY = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


# -- cron expressions ------------------------------------------------------------------------------


def test_cron_is_read_as_crontab_reads_it() -> None:
    weekdays = parse_cron("30 6 * * 1-5")
    assert weekdays.minutes == (30,) and weekdays.hours == (6,)
    assert weekdays.weekdays == (1, 2, 3, 4, 5)  # Monday to Friday, as in crontab(5)
    # apscheduler's own crontab reader would count 0 as Monday: the names say what is meant
    assert weekdays.trigger_fields()["day_of_week"] == "mon,tue,wed,thu,fri"
    assert parse_cron("0 0 * * 0").weekdays == parse_cron("0 0 * * 7").weekdays == (0,)
    assert parse_cron("0 0 * * sun").trigger_fields()["day_of_week"] == "sun"
    assert parse_cron("*/15 * * * *").minutes == (0, 15, 30, 45)
    assert parse_cron("5/20 8-18/5 * jan,jul *").trigger_fields() == {
        "minute": "5,25,45",
        "hour": "8,13,18",
        "day": "*",
        "month": "1,7",
        "day_of_week": "*",
    }
    assert parse_cron("@hourly").trigger_fields() == parse_cron("0 * * * *").trigger_fields()
    assert parse_cron("@daily").trigger_fields()["hour"] == "0"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 * * *", "has 4 fields"),
        ("60 * * * *", "minute 60 is out of range (0-59)"),
        ("0 18-6 * * *", "runs backwards"),
        ("0 0 1 * 1", "restricts both the day of the month and the day of the week"),
        ("0 0 * * funday", "day of week 'funday' is not a number or a name"),
        ("0 0 * * */0", "a step must be at least 1"),
        ("0 0 ? * *", "cannot read '?'"),
    ],
)
def test_a_bad_cron_expression_says_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_cron(expression)
    assert message in str(info.value)


def test_bad_schedule_settings_are_errors_with_file_and_line(tmp_path: Path) -> None:
    cases = {
        "digest_cron: '0 25 * * *'": "settings.digest_cron: Value error, hour 25 is out of range",
        "timezone: Mars/Olympus": "unknown time zone 'Mars/Olympus'",
        "digest_cron: '0 6 * * *'\n  digest_interval_minutes: 30": "not both",
        "crawl_min_wait_minutes: 90": "crawl_min_wait_minutes is more than",
    }
    for lines, message in cases.items():
        path = tmp_path / "sources.yaml"
        path.write_text(f"settings:\n  {lines}\nsources: []\n")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        [problem] = info.value.problems
        assert problem.startswith(f"{path}:") and message in problem, problem


def test_the_digest_runs_at_cron_times_in_the_time_zone() -> None:
    settings = Settings(digest_cron="30 6 * * 1-5", timezone="Europe/Berlin")
    trigger = digest_trigger(settings)
    assert isinstance(trigger, CronTrigger)
    # Friday 11:00 in Berlin: the next weekday 06:30 there is Monday, 05:30 UTC in winter...
    monday = trigger.get_next_fire_time(None, FRIDAY)
    assert monday.astimezone(UTC) == datetime(2026, 11, 30, 5, 30, tzinfo=UTC)
    # ...and 04:30 UTC in summer
    summer = trigger.get_next_fire_time(None, datetime(2026, 7, 1, 10, 0, tzinfo=UTC))
    assert summer.astimezone(UTC) == datetime(2026, 7, 2, 4, 30, tzinfo=UTC)
    # the default: every hour on the hour, UTC
    hourly = digest_trigger(Settings()).get_next_fire_time(None, FRIDAY + timedelta(minutes=1))
    assert hourly == FRIDAY + timedelta(hours=1)


def test_the_older_digest_interval_still_works() -> None:
    settings = Settings(digest_interval_minutes=45)
    trigger = digest_trigger(settings)
    assert isinstance(trigger, IntervalTrigger)
    assert trigger.interval == timedelta(minutes=45)


# -- the crawl's wake-up time ------------------------------------------------------------------


def _config(*sources: Source, **settings: object) -> Config:
    return Config(settings=Settings.model_validate(settings), sources=sources)


def _source(source_id: str, **fields: object) -> Source:
    return Source.model_validate(
        {"id": source_id, "name": source_id, "url": f"https://{source_id}.example/feed", **fields}
    )


def test_the_crawl_wakes_when_the_earliest_source_is_due() -> None:
    a, b, gone, off = _source("a"), _source("b"), _source("gone"), _source("off", enabled=False)
    config = _config(a, b, gone, off, crawl_min_wait_minutes=2, crawl_max_wait_minutes=60)
    states = {
        "a": FetchState("a", url=a.url, next_fetch=FRIDAY + timedelta(minutes=25)),
        "b": FetchState("b", url=b.url, next_fetch=FRIDAY + timedelta(minutes=12)),
        "gone": FetchState("gone", url=gone.url, gone_url=gone.url, next_fetch=FRIDAY),
        "off": FetchState("off", url=off.url, next_fetch=FRIDAY),
    }
    # the earliest due enabled source that is not gone: b
    assert next_crawl_time(config, states, FRIDAY) == FRIDAY + timedelta(minutes=12)
    # one already due: no sooner than the minimum wait after a crawl, but at once at start
    states["b"] = FetchState("b", url=b.url, next_fetch=FRIDAY - timedelta(hours=1))
    assert next_crawl_time(config, states, FRIDAY) == FRIDAY + timedelta(minutes=2)
    assert next_crawl_time(config, states, FRIDAY, first=True) == FRIDAY
    # a source never fetched (or whose URL the editor changed) is due now
    states["b"] = FetchState("b", url="https://b.example/old-feed", next_fetch=FRIDAY + DAY)
    assert next_crawl_time(config, states, FRIDAY, first=True) == FRIDAY
    # nothing due for a day: wake at the latest after the maximum wait
    far = {s: FetchState(s, url=f"https://{s}.example/feed", next_fetch=FRIDAY + DAY) for s in "ab"}
    far["gone"] = states["gone"]
    assert next_crawl_time(config, far, FRIDAY) == FRIDAY + timedelta(minutes=60)
    assert next_crawl_time(_config(gone), states, FRIDAY) == FRIDAY + timedelta(minutes=60)


DAY = timedelta(days=1)


def test_the_scheduler_coalesces_runs_one_job_at_a_time_with_a_misfire_grace(
    tmp_path: Path,
    db_url: str,
) -> None:
    config = _config(_source("a"), misfire_grace_minutes=7, crawl_min_wait_minutes=3)
    with Storage(db_url) as storage:
        cycle = Cycle(config, storage, tmp_path / "site", clock=lambda: FRIDAY)
        scheduler = build_scheduler(cycle, start=FRIDAY)
        jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"crawl", "digest"}
    for job in jobs.values():
        assert job.coalesce and job.max_instances == 1 and job.misfire_grace_time == 7 * 60
    # jobs run on the scheduler's own thread, one after the other: never two at once
    assert isinstance(scheduler._lookup_executor("default"), DebugExecutor)
    # a never-fetched source is due: the crawl runs at start, then when the cycle plans it
    assert jobs["crawl"].next_run_time == FRIDAY and jobs["digest"].next_run_time == FRIDAY
    trigger = jobs["crawl"].trigger
    assert isinstance(trigger, DueTrigger)
    cycle.next_crawl = FRIDAY + timedelta(minutes=20)
    assert trigger.get_next_fire_time(FRIDAY, FRIDAY) == FRIDAY + timedelta(minutes=20)
    # a plan in the past never makes the scheduler run in place: the minimum wait applies
    cycle.next_crawl = FRIDAY - timedelta(hours=1)
    assert trigger.get_next_fire_time(FRIDAY, FRIDAY) == FRIDAY + timedelta(minutes=3)
    assert isinstance(jobs["digest"].trigger, CronTrigger)


# -- the jobs ----------------------------------------------------------------------------------


def test_crawl_and_digest_jobs_build_the_site_and_skip_while_another_run_holds_the_lock(
    tmp_path: Path,
    db_url: str,
) -> None:
    out = tmp_path / "site"
    with DemoServer() as srv, Storage(db_url) as storage:
        config = demo_config(srv.base_url, out_dir=out, data_dir=tmp_path / "data")
        cycle = Cycle(config, storage, out)
        with run_lock(config):  # as if a cron `aggregator run` were in progress
            assert cycle.crawl() == "locked" and cycle.digest() == "locked"
        assert storage.count_articles() == 0 and not out.exists()  # skipped, nothing written
        # the sources were never fetched: the crawl is tried again after the minimum wait
        assert cycle.next_crawl - datetime.now(UTC) < timedelta(minutes=1, seconds=5)
        assert cycle.crawl() == "ok"
        assert storage.count_articles() > 30
        # every source is now due in crawl_interval_minutes (30, spread by the feeds' hints)
        assert cycle.next_crawl - datetime.now(UTC) > timedelta(minutes=20)
        assert cycle.digest() == "ok"
    assert not feedparser.parse((out / "atom.xml").read_bytes()).bozo
    assert len(list((out / "stories").glob("*.html"))) >= 5


def test_a_stop_between_stages_ends_the_digest_there(tmp_path: Path, db_url: str) -> None:
    out = tmp_path / "site"
    with DemoServer() as srv, Storage(db_url) as storage:
        config = demo_config(srv.base_url, out_dir=out, data_dir=tmp_path / "data")
        Cycle(config, storage, out).crawl()
        window = Window.last(datetime.now(UTC), 24)
        asked: list[int] = []

        def stop() -> bool:  # asked before each stage; "yes" after clustering
            asked.append(1)
            return len(asked) > 1

        with pytest.raises(Interrupted, match="stopped before summarising"):
            digest(config, storage, window, out, stop=stop)
        assert storage.stories(), "clustering finished and was stored"
        assert not storage.summaries(s.id for s in storage.stories()) and not out.exists()


# -- real processes, real signals ----------------------------------------------------------------


def _articles(tmp_path: Path) -> int:
    with Storage(f"sqlite:///{tmp_path / 'data' / 'aggregator.db'}") as storage:
        return storage.count_articles()


def test_once_runs_the_due_crawl_and_the_digest_then_exits(tmp_path: Path) -> None:
    with LoopbackServer() as srv:
        srv.routes["/wire.xml"] = Response(body=feed_xml("wire", srv.url("/")))
        cfg = write_config(
            tmp_path / "sources.yaml",
            {"wire": srv.url("/wire.xml")},
            "health_file: health.json\ndigest_cron: '30 6 * * 1-5'\ntimezone: Europe/Berlin",
        )
        now = "--now=2026-11-27T10:00:00Z"  # a Friday
        first = aggregator(["schedule", "--once", now, "--config", str(cfg)], tmp_path)
        assert first.wait() == 0, first.stderr
        assert first.stdout.splitlines()[:2] == ["crawl: ok", "digest: ok"]
        assert "next crawl: 2026-11-27 10:30:" in first.stdout  # crawl_interval_minutes: 30
        assert "next digest: 2026-11-30 06:30:00 CET (at '30 6 * * 1-5' (Europe/Berlin))" in (
            first.stdout
        )
        assert _articles(tmp_path) == 2 and (tmp_path / "site" / "index.html").exists()
        health = json.loads((tmp_path / "health.json").read_text())
        assert health["jobs"]["crawl"]["counts"]["new_articles"] == 2
        # ten minutes later no source is due: only the digest runs, the feed is not asked
        later = aggregator(
            ["schedule", "--once", "--now=2026-11-27T10:10:00Z", "--config", str(cfg)], tmp_path
        )
        assert later.wait() == 0, later.stderr
        assert later.stdout.splitlines()[:2] == ["digest: ok", "crawl: no source due"]
    assert [r.path for r in srv.requests] == ["/wire.xml"]


def _daemon(tmp_path: Path, srv: LoopbackServer, held: HeldFeed) -> Process:
    srv.routes["/wire.xml"] = held
    cfg = write_config(
        tmp_path / "sources.yaml", {"wire": srv.url("/wire.xml")}, "health_file: health.json"
    )
    return aggregator(["schedule", "--config", str(cfg)], tmp_path)


def test_sigterm_mid_crawl_finishes_the_crawl_and_exits_0(tmp_path: Path) -> None:
    with LoopbackServer() as srv:
        held = HeldFeed(feed_xml("wire", srv.url("/")))
        daemon = _daemon(tmp_path, srv, held)
        try:
            wait_for(held.entered.is_set, "the crawl to ask for the feed")
            daemon.popen.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert daemon.popen.poll() is None
            held.release.set()  # the crawl stage goes on to its end...
            assert daemon.wait(60) == 0, daemon.stderr
        finally:
            daemon.stop()
    assert "SIGTERM: stopping after the current stage" in daemon.stderr
    assert "digest skipped: stopping" in daemon.stderr
    assert _articles(tmp_path) == 2  # ...and stored what it fetched
    assert not (tmp_path / "site").exists()  # the digest did not start
    health = json.loads((tmp_path / "health.json").read_text())
    assert health["jobs"]["crawl"]["outcome"] == "ok" and "digest" not in health["jobs"]


def test_sigterm_while_idle_exits_0_at_once(tmp_path: Path) -> None:
    with LoopbackServer() as srv:
        srv.routes["/wire.xml"] = Response(body=feed_xml("wire", srv.url("/")))
        cfg = write_config(
            tmp_path / "sources.yaml", {"wire": srv.url("/wire.xml")}, "health_file: health.json"
        )
        daemon = aggregator(["schedule", "--config", str(cfg)], tmp_path)
        try:
            health = tmp_path / "health.json"
            wait_for(lambda: health.exists() and "digest" in health.read_text(), "the digest")
            daemon.popen.send_signal(signal.SIGTERM)  # waiting for the next crawl or digest
            started = time.monotonic()
            assert daemon.wait(30) == 0, daemon.stderr
            assert time.monotonic() - started < 5
        finally:
            daemon.stop()
    assert "SIGTERM: stopping after the current stage" in daemon.stderr
    assert [r.path for r in srv.requests] == ["/wire.xml"]  # not due again for 30 minutes


def test_a_second_signal_exits_at_once(tmp_path: Path) -> None:
    with LoopbackServer() as srv:
        held = HeldFeed(feed_xml("wire", srv.url("/")))
        daemon = _daemon(tmp_path, srv, held)
        try:
            wait_for(held.entered.is_set, "the crawl to ask for the feed")
            daemon.popen.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            daemon.popen.send_signal(signal.SIGINT)
            started = time.monotonic()
            code = daemon.wait(20)
            assert time.monotonic() - started < 5 and not held.release.is_set()
        finally:
            held.release.set()
            daemon.stop()
    assert code == 128 + signal.SIGINT
    assert _articles(tmp_path) == 0  # the crawl never finished: nothing half-stored


def test_ctrl_c_in_a_terminal_spares_the_workers_and_finishes_the_stage(tmp_path: Path) -> None:
    """Ctrl-C signals the terminal's whole process group, parse workers included: they ignore
    it, so the feed that arrives after it is still parsed."""
    with LoopbackServer() as srv:
        srv.routes["/quick.xml"] = Response(body=feed_xml("quick", srv.url("/")))
        held = HeldFeed(feed_xml("wire", srv.url("/")))
        srv.routes["/wire.xml"] = held
        cfg = write_config(
            tmp_path / "sources.yaml",
            {"quick": srv.url("/quick.xml"), "wire": srv.url("/wire.xml")},
        )
        daemon = aggregator(["schedule", "--config", str(cfg)], tmp_path, new_session=True)
        try:
            # the forkserver, a parse worker and the resource tracker run beside the daemon,
            # which still waits for the held feed; each of them ignores SIGINT by now (a worker
            # does once its initializer has run, the forkserver once its imports are done)
            wait_for(held.entered.is_set, "the crawl to ask for the held feed")

            def workers_up() -> bool:
                below = descendants(daemon.popen.pid)
                return len(below) >= 3 and all(ignores_sigint(pid) for pid in below)

            wait_for(workers_up, "the parse workers")
            os.killpg(daemon.popen.pid, signal.SIGINT)
            time.sleep(0.5)
            held.release.set()
            assert daemon.wait(60) == 0, daemon.stderr
        finally:
            held.release.set()
            daemon.stop()
    assert "SIGINT: stopping after the current stage" in daemon.stderr
    assert _articles(tmp_path) == 4, daemon.stderr  # both feeds' articles


def test_the_clock_is_pinned_for_once_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path / "sources.yaml", {"wire": "https://wire.example/feed.xml"})
    assert main(["schedule", "--now", "2026-11-27T10:00:00Z", "--config", str(cfg)]) == 2
    assert "--now pins the clock of --once only" in capsys.readouterr().err
