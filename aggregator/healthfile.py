"""The health file: what the last crawl and digest did, for a monitor to read, and the verdict of
``aggregator status --healthcheck``.

Written after each run (``aggregator run``, each job of ``aggregator schedule``) when the
``health_file`` setting names one, by renaming a complete temporary file over it, so a reader
never sees half a file. One entry per job, each with its last outcome, counts and error and the
time it last succeeded; a failed run keeps the earlier success time, which is what the health
check compares with its limit. Standard library only: the health check loads nothing else.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aggregator.errors import Interrupted
from aggregator.times import iso, parse_iso, utcnow

if TYPE_CHECKING:
    from aggregator.sources.load import Config

log = logging.getLogger("aggregator.health")

VERSION = 1
OK, FAILED, STOPPED = "ok", "failed", "stopped"


@dataclass(frozen=True)
class JobResult:
    """How one job of a run went."""

    job: str  # "crawl" or "digest"
    outcome: str  # OK; FAILED (an error, or every source failed); STOPPED (by a signal)
    started: datetime
    finished: datetime
    counts: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None


def job_json(result: JobResult) -> dict[str, Any]:
    """A job's result as the health file and the run records keep it."""
    return {
        "outcome": result.outcome,
        "started": iso(result.started),
        "finished": iso(result.finished),
        "seconds": round((result.finished - result.started).total_seconds(), 3),
        "counts": dict(result.counts),
        "error": result.error,
    }


def run_outcome(results: list[JobResult]) -> str:
    """A run's outcome: its first job that was not OK says it (a stop ends a run, so it comes
    last), else OK."""
    return next((r.outcome for r in results if r.outcome != OK), OK)


def health_path(config: Config) -> Path | None:
    """settings.health_file (relative: to the config file's folder), or None when unset."""
    value = config.settings.health_file
    if not value:
        return None
    path = Path(value)
    return path if path.is_absolute() else config.base_dir / path


Note = Callable[..., None]  # note(counts, failed=False): what the job did


class Recorder:
    """Collects a run's JobResults and writes them to the health file (if one is set)."""

    def __init__(self, path: Path | None, clock: Callable[[], datetime] = utcnow):
        self.path = path
        self.clock = clock
        self.results: list[JobResult] = []

    @contextlib.contextmanager
    def job(self, name: str) -> Iterator[Note]:
        """Time the block as job ``name``; it calls note(counts, failed=...) when done. An
        exception out of the block is recorded as the job's failure (or stop) and re-raised."""
        started = self.clock()
        noted: dict[str, Any] = {"counts": {}, "failed": False}

        def note(counts: Mapping[str, int], *, failed: bool = False) -> None:
            noted.update(counts=dict(counts), failed=failed)

        try:
            yield note
        except Exception as exc:
            self.results.append(
                JobResult(
                    name,
                    STOPPED if isinstance(exc, Interrupted) else FAILED,
                    started,
                    self.clock(),
                    noted["counts"],
                    str(exc) or type(exc).__name__,
                )
            )
            raise
        outcome = FAILED if noted["failed"] else OK
        self.results.append(JobResult(name, outcome, started, self.clock(), noted["counts"]))

    def write(self) -> None:
        """Merge the results into the health file; a failure to write is logged, not raised."""
        if self.path is None or not self.results:
            return
        try:
            write_health(self.path, self.results)
        except OSError as exc:
            log.error("could not write the health file %s: %s", self.path, exc)


def write_health(path: Path, results: list[JobResult]) -> None:
    """Merge ``results`` into the file at ``path``, atomically."""
    jobs: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        old = read_health(path)
        if isinstance(old.get("jobs"), dict):
            jobs = old["jobs"]
    for result in results:
        earlier = jobs.get(result.job)
        before: dict[str, Any] = earlier if isinstance(earlier, dict) else {}
        jobs[result.job] = {
            **job_json(result),
            "last_success": iso(result.finished)
            if result.outcome == OK
            else before.get("last_success"),
        }
    document = {
        "version": VERSION,
        "updated": iso(max(r.finished for r in results)),
        "outcome": run_outcome(results),  # of the run that wrote the file last
        "jobs": jobs,
    }
    _replace(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _replace(path: Path, text: str) -> None:
    """Write a temporary file beside ``path``, flush it to disk, rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def read_health(path: Path) -> dict[str, Any]:
    """The health file's document; OSError when unreadable, ValueError when not one."""
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    return document


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    lines: tuple[str, ...]  # one per job (or one saying why there is nothing to judge)


def check_health(path: Path, now: datetime, max_age: timedelta) -> Verdict:
    """Healthy when every job in the file succeeded within ``max_age`` before ``now``."""
    try:
        document = read_health(path)
    except FileNotFoundError:
        return Verdict(False, (f"{path}: no health file (no run has finished since it was set)",))
    except (OSError, ValueError) as exc:
        return Verdict(False, (f"{path}: unreadable health file: {exc}",))
    jobs = document.get("jobs")
    if not isinstance(jobs, dict) or not jobs:
        return Verdict(False, (f"{path}: no job recorded",))
    healthy, lines = True, []
    for name, entry in sorted(jobs.items()):
        entry = entry if isinstance(entry, dict) else {}
        last = f"last run {entry.get('outcome', '?')} at {entry.get('finished', '?')}"
        if entry.get("error"):
            last += f": {entry['error']}"
        try:
            success = parse_iso(entry["last_success"]) if entry.get("last_success") else None
        except (TypeError, ValueError):
            success = None
        if success is None:
            healthy = False
            lines.append(f"{name}: never succeeded ({last})")
            continue
        age = now - success
        hours = age.total_seconds() / 3600
        limit = max_age.total_seconds() / 3600
        if age > max_age:
            healthy = False
            lines.append(f"{name}: last success {hours:.1f} h ago, over {limit:g} h ({last})")
        else:
            lines.append(f"{name}: ok, last success {hours:.1f} h ago ({last})")
    return Verdict(healthy, tuple(lines))
