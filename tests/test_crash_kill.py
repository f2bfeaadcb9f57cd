"""kill -9 at random points of every stage of ``aggregator run``, on a few thousand real articles.

Each round adds sources (real feeds from the loopback feed farm, so every round has new
articles to crawl, cluster, summarise and render), starts ``aggregator run`` and kills it with
SIGKILL at a random moment of one stage (tests/support/killable_run.py), then checks:

- the database is sound: SQLite's ``PRAGMA integrity_check`` and ``foreign_key_check``, or
  PostgreSQL's amcheck over every B-tree index; no story member without its article;
- the published site is the last complete one: unchanged, unless the kill came after the new
  release was swapped in, and then the new one is whole (every local link resolves);
- a rerun completes, and afterwards no article is stored twice and none is lost: the stored
  articles are exactly those of a run that was never killed, over the same sources.
"""

from __future__ import annotations

import os
import random
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.feed_farm import FeedFarm

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("crawl", "cluster", "summarise", "render")
SEED = int(os.environ.get("AGGREGATOR_KILL_SEED", "20261203"))  # another seed, other moments
START = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
HREF = re.compile(rb'(?:href|src)="([^"#?:]+)(?:[#?][^"]*)?"')


@pytest.fixture(scope="module")
def farm(shared_data: Path) -> Iterator[FeedFarm]:
    with FeedFarm(ports=4) as running:
        yield running


def write_sources(path: Path, urls: list[str], out: Path) -> None:
    lines = [
        "settings:",
        "  window_hours: 8784  # the farm's feeds span the year",
        "  retention_days: null  # every article stays, so none may go missing",
        f"  output_dir: {out}",
        f"  data_dir: {path.parent / 'data'}",
        "  fetch:",
        "    allow_private_networks: true",
        "sources:",
    ]
    for i, url in enumerate(urls):
        lines += [f"  - id: s{i}", f"    name: Source {i}", f"    url: {url}"]
        lines += [f"    category: {('world', 'technology', 'science')[i % 3]}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(
    config: Path, db: str, now: datetime, marks: Path, stage: str = "none", delay: float = 0.0
) -> subprocess.CompletedProcess[str]:
    """``aggregator run`` in a child that kills itself ``delay`` s into ``stage``."""
    args = [sys.executable, "-m", "tests.support.killable_run", str(marks), stage, f"{delay:.3f}"]
    args += ["--", "run", "--config", str(config), "--db", db, "--now", now.isoformat()]
    return subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=600)


def stage_times(marks: Path) -> dict[str, float]:
    """How long each stage took in the last run that the marks file describes."""
    started: dict[str, float] = {}
    took: dict[str, float] = {}
    for line in marks.read_text(encoding="utf-8").splitlines():
        stage, event, at = line.split()
        if event == "start":
            started[stage] = float(at)
        else:
            took[stage] = float(at) - started[stage]
    return took


def last_stage(marks: Path) -> str:
    return marks.read_text(encoding="utf-8").splitlines()[-1].split()[0]


def snapshot(site: Path) -> dict[str, bytes]:
    if not site.exists():
        return {}
    return {str(p.relative_to(site)): p.read_bytes() for p in site.rglob("*") if p.is_file()}


def resolve(page: str, link: str) -> str | None:
    """The site path a relative link on ``page`` points at; None when it leaves the site."""
    parts = page.split("/")[:-1]
    for part in link.split("/"):
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part not in {"", "."}:
            parts.append(part)
    return "/".join(parts)


def assert_whole(files: dict[str, bytes]) -> None:
    """The site has its front page, and every page's local links and images resolve in it."""
    assert "index.html" in files
    for name, body in files.items():
        if not name.endswith(".html"):
            continue
        for raw in HREF.findall(body):
            link = raw.decode()
            path = resolve(name, link)
            assert path is not None, f"{name} links outside the site: {link!r}"
            found = path in files or f"{path}/index.html".lstrip("/") in files
            assert found, f"{name} links to {link!r}, which the site lacks"


def assert_sound(db: str) -> None:
    """The database's own integrity checks pass, and its rows are consistent."""
    if db.startswith("sqlite"):
        with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
            rows = consistency(conn.execute)
    else:
        import psycopg

        with psycopg.connect(db.replace("postgresql+psycopg://", "postgresql://")) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
            indexes = conn.execute(
                "SELECT c.oid::regclass::text FROM pg_index i JOIN pg_class c "
                "ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE a.amname = 'btree' AND n.nspname = 'public'"
            ).fetchall()
            assert indexes
            for (index,) in indexes:  # raises on a corrupt index or one missing a heap row
                conn.execute("SELECT bt_index_check(%s::regclass, true)", (index,))
            rows = consistency(conn.execute)
    assert rows == {"duplicate urls": 0, "members without article": 0}, rows


def consistency(execute: Callable[[str], Any]) -> dict[str, int]:
    """Counts that must be zero: conn.execute of either driver runs the queries."""
    queries = {
        "duplicate urls": "SELECT COUNT(*) - COUNT(DISTINCT url) FROM article",
        "members without article": "SELECT COUNT(*) FROM story_member m "
        "LEFT JOIN article a ON a.id = m.article_id WHERE a.id IS NULL",
    }
    return {name: execute(sql).fetchone()[0] for name, sql in queries.items()}


def article_urls(db: str) -> set[str]:
    """The stored articles, by URL (an article two feeds carry is stored once, for whichever
    source brought it first)."""
    sql = "SELECT url FROM article"
    if db.startswith("sqlite"):
        with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
            return {url for (url,) in conn.execute(sql).fetchall()}
    import psycopg

    with psycopg.connect(db.replace("postgresql+psycopg://", "postgresql://")) as conn:
        return {url for (url,) in conn.execute(sql).fetchall()}


def kill_loop(
    farm: FeedFarm, tmp_path: Path, db: str, reference_db: str, *, rounds: int, step: int
) -> None:
    rng = random.Random(SEED)
    config, site, marks = tmp_path / "sources.yaml", tmp_path / "site", tmp_path / "marks"
    first = 20
    now = START
    write_sources(config, farm.source_urls(first), site)
    done = run(config, db, now, marks)
    assert done.returncode == 0, done.stderr[-3000:]
    took = stage_times(marks)
    hits: dict[str, int] = dict.fromkeys(STAGES, 0)
    kills: list[str] = []
    for n in range(rounds):
        stage = STAGES[n % len(STAGES)]
        now += timedelta(hours=1)
        write_sources(config, farm.source_urls(first + step * (n + 1)), site)
        before = snapshot(site)
        # the stage's kills spread over it: the k-th of K falls in the k-th K-quantile of its time
        k, per_stage = n // len(STAGES), rounds // len(STAGES)
        delay = took[stage] * (k + rng.random()) / per_stage
        marks.unlink()
        killed = run(config, db, now, marks, stage, delay)
        assert killed.returncode == -9, f"round {n}: {stage} not killed: {killed.stderr[-3000:]}"
        hit = last_stage(marks)
        assert hit == stage, f"round {n}: meant for {stage}, killed in {hit}"
        hits[stage] += 1
        kills.append(f"{stage} at {delay:.2f}/{took[stage]:.2f} s")
        assert_sound(db)
        after = snapshot(site)
        if after != before:  # only a kill after the new release was swapped in shows it
            assert stage == "render", f"round {n}: the site changed although {stage} was killed"
            assert_whole(after)
        marks.unlink()
        rerun = run(config, db, now, marks)
        assert rerun.returncode == 0, f"round {n}: rerun failed: {rerun.stderr[-3000:]}"
        assert_sound(db)
        assert_whole(snapshot(site))
        # later stages grow with the articles; the crawl's work per round stays about the same
        took |= {s: t for s, t in stage_times(marks).items() if s != "crawl"}
    assert all(hits.values()), hits
    # the same sources, crawled once by a run that nobody killed
    marks.unlink()
    reference = run(config, reference_db, now, marks)
    assert reference.returncode == 0, reference.stderr[-3000:]
    stored, expected = article_urls(db), article_urls(reference_db)
    assert len(expected) > 2_000, len(expected)  # "a few thousand articles"
    assert stored == expected, (sorted(stored - expected)[:5], sorted(expected - stored)[:5])
    print(f"kill loop on {db.split(':')[0]}, seed {SEED}: {rounds} kills ({'; '.join(kills)}),")
    print(f"  {len(stored)} articles, none lost or stored twice, no integrity failure")


def test_kill_9_in_every_stage_of_a_sqlite_run(farm: FeedFarm, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'news.db'}"
    kill_loop(farm, tmp_path, db, f"sqlite:///{tmp_path / 'reference.db'}", rounds=8, step=10)


def test_kill_9_in_every_stage_of_a_postgresql_run(
    farm: FeedFarm, tmp_path: Path, pg_url: str
) -> None:
    kill_loop(farm, tmp_path, pg_url, f"sqlite:///{tmp_path / 'reference.db'}", rounds=4, step=20)
