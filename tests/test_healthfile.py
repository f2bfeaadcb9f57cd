"""The health file: written atomically after each run, kept honest across failures, and read by
``aggregator status --healthcheck``, whose exit code a monitor acts on."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.cli.main import main
from aggregator.healthfile import JobResult, check_health, write_health
from aggregator.pipeline import run_lock
from aggregator.sources.load import load_config
from tests.support.loopback import LoopbackServer, Response
from tests.support.processes import feed_xml, write_config

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def _health(path: Path) -> dict[str, object]:
    document = json.loads(path.read_text())
    assert isinstance(document, dict)
    return document


def _jobs(path: Path) -> dict[str, dict[str, object]]:
    jobs = _health(path)["jobs"]
    assert isinstance(jobs, dict)
    return jobs


def test_each_run_writes_how_it_went_and_a_failure_keeps_the_last_success(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    health = tmp_path / "health.json"
    with LoopbackServer() as srv:
        srv.routes["/wire.xml"] = Response(body=feed_xml("wire", srv.url("/")))
        cfg = write_config(
            tmp_path / "sources.yaml",
            {"wire": srv.url("/wire.xml")},
            "health_file: health.json\ncrawl_interval_minutes: 1",
        )
        assert main(["run", "--config", str(cfg)]) == 0
        first = _jobs(health)
        assert first["crawl"]["outcome"] == first["digest"]["outcome"] == "ok"
        assert first["crawl"]["counts"] == {
            "sources": 1,
            "fetched": 1,
            "not_modified": 0,
            "failed": 0,
            "skipped": 0,
            "new_articles": 2,
        }
        assert first["digest"]["counts"]["articles"] == 2  # type: ignore[index]
        assert first["crawl"]["last_success"] == first["crawl"]["finished"]
        assert _health(health)["outcome"] == "ok"
        # the feed breaks: every source failed (exit 1), the digest still ran
        srv.routes["/wire.xml"] = Response(status=500, body=b"down")
        later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
        assert main(["run", "--config", str(cfg), "--now", later]) == 1
    second = _jobs(health)
    assert second["crawl"]["outcome"] == "failed" and _health(health)["outcome"] == "failed"
    assert second["crawl"]["counts"]["failed"] == 1  # type: ignore[index]
    assert second["crawl"]["last_success"] == first["crawl"]["last_success"]  # kept
    assert second["digest"]["outcome"] == "ok"
    assert second["digest"]["last_success"] != first["digest"]["last_success"]
    assert [p.name for p in tmp_path.glob(".health.json*")] == []  # no temporary file left
    capsys.readouterr()


def test_a_run_that_breaks_records_its_error_and_a_refused_run_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "not-a-folder").write_text("a file where the site's folder should be")
    cfg = tmp_path / "sources.yaml"
    cfg.write_text(
        "settings:\n  health_file: health.json\n  data_dir: data\n"
        "  output_dir: not-a-folder/site\nsources: []\n"
    )
    config = load_config(cfg)
    with run_lock(config):
        assert main(["run", "--no-crawl", "--config", str(cfg)]) == 75
    assert not (tmp_path / "health.json").exists()  # refused: nothing written
    assert main(["run", "--no-crawl", "--config", str(cfg)]) == 70  # not a folder: a crash
    jobs = _jobs(tmp_path / "health.json")
    assert set(jobs) == {"digest"}  # no crawl was asked for
    assert jobs["digest"]["outcome"] == "failed" and jobs["digest"]["last_success"] is None
    assert "not-a-folder" in str(jobs["digest"]["error"])  # File exists: ...not-a-folder
    capsys.readouterr()


def test_the_healthcheck_exit_code_follows_the_age_of_the_last_success(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "sources.yaml"
    cfg.write_text("settings:\n  health_file: state/health.json\nsources: []\n")
    check = ["status", "--healthcheck", "--config", str(cfg)]
    assert main([*check, "--now", T0.isoformat()]) == 1
    assert "no health file" in capsys.readouterr().out
    path = tmp_path / "state" / "health.json"
    write_health(path, [JobResult("crawl", "ok", T0, T0), JobResult("digest", "ok", T0, T0)])
    write_health(path, [JobResult("crawl", "failed", T0, T0 + timedelta(hours=1), error="down")])
    at = (T0 + timedelta(hours=1, minutes=30)).isoformat()
    assert main([*check, "--now", at]) == 0
    out = capsys.readouterr().out
    assert (
        "crawl: ok, last success 1.5 h ago (last run failed at 2026-11-27T11:00:00Z: down)" in out
    )
    assert main([*check, "--now", at, "--max-age", "1"]) == 1
    out = capsys.readouterr().out
    assert "crawl: last success 1.5 h ago, over 1 h" in out
    assert main([*check, "--now", (T0 + timedelta(hours=3)).isoformat()]) == 1  # default: 2 h
    capsys.readouterr()
    path.write_text('{"jobs": ')
    assert main([*check, "--now", at]) == 1
    assert "unreadable health file" in capsys.readouterr().out
    # without a health_file setting there is nothing to check: a problem to fix first
    bare = tmp_path / "bare.yaml"
    bare.write_text("sources: []\n")
    assert main(["status", "--healthcheck", "--config", str(bare)]) == 2
    assert "set health_file" in capsys.readouterr().err


def test_a_job_that_never_succeeded_is_unhealthy(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    write_health(path, [JobResult("digest", "failed", T0, T0, error="disk full")])
    verdict = check_health(path, T0, timedelta(hours=2))
    assert not verdict.healthy
    assert verdict.lines == (
        "digest: never succeeded (last run failed at 2026-11-27T10:00:00Z: disk full)",
    )


def test_readers_never_see_half_a_file(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    write_health(path, [JobResult("crawl", "ok", T0, T0, {"new_articles": 0})])
    seen: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.append(path.read_text())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(300):
            counts = {f"count_{i}": n for i in range(50)}  # a few kilobytes each time
            write_health(path, [JobResult("crawl", "ok", T0, T0, counts)])
    finally:
        done.set()
        reader.join()
    assert len(seen) > 10
    for text in seen:
        json.loads(text)  # every read is a whole document
