"""The crawl at scale, beside a naive crawler, on 200 real feeds served from 127.0.0.1.

tests/support/feed_farm.py serves the 200 real feeds of fastfeedparser's benchmark data as any
number of distinct sources over 20 ports, with ETag and Last-Modified. Each crawl runs as
``aggregator crawl --force`` in its own process; its wall time and the peak resident memory of
its whole process tree (workers included) are measured from outside. The naive crawler is what
one would write in an afternoon: sequential urllib, feedparser, sqlite3, no conditional GET.

The crawls run with the clock at the feeds' capture (``--now``, CAPTURED), so their items are
as old as a crawl of the live feeds found them: 81 % were over 30 days old. Those items are
stored without text, as the next upkeep would prune it (retention_days); the "every item's
text" rows set retention_days to null, and make the text of every item, however old. The
pages variant does too, so that every thin item's page is fetched and extracted.

Run from the repository root: ``.venv/bin/python -m benchmarks crawl``. Environment:
``BENCH_CRAWL_SIZES`` (default ``200,1000,10000``), ``BENCH_CRAWL_PG=0`` to skip PostgreSQL,
``BENCH_CRAWL_PAGES=0`` to skip the variant that also fetches article pages,
``BENCH_CRAWL_PG_ROUNDS`` (default 3) for the rounds of crawls (a first and a second) that
SQLite and PostgreSQL run in turn at the size nearest 1,000 (0 skips them),
``BENCH_CRAWL_PAGE_ROUNDS`` (default 3) for the first crawls of the pages variant.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.feed_farm import CAPTURED, FEEDS, PAGES, FeedFarm
from tests.support.processes import descendants

ROOT = Path(__file__).resolve().parents[1]
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
NAIVE_SOURCES = 200
PG_ROUNDS = int(os.environ.get("BENCH_CRAWL_PG_ROUNDS", "3"))
PAGE_ROUNDS = int(os.environ.get("BENCH_CRAWL_PAGE_ROUNDS", "3"))
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")
_SAMPLER_CPU: list[float] = []  # CPU seconds the sampling thread took, per measured run


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_mb: float  # peak resident memory of the process tree (RSS summed)
    peak_pss_mb: float  # the same as proportional set sizes (shared pages counted once)
    cpu: float  # CPU seconds of the process tree (user + system)
    articles: int  # articles in the database afterwards

    def rate(self, sources: int) -> float:
        return sources / self.seconds


def _tree_rss(pids: list[int], cpu: dict[int, float], *, pss: bool) -> tuple[int, int]:
    """Resident bytes of the processes ``pids``, from /proc, summed as RSS (pages shared by
    forked workers count once per process) and, when ``pss``, as PSS (shared pages divided
    among their sharers; 0 otherwise); ``cpu`` gets each one's CPU seconds so far."""
    total = proportional = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            with open(f"/proc/{pid}/statm", "rb") as handle:
                pages = int(handle.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # it ended meanwhile
        total += pages * _PAGE
        if pss:
            proportional += _pss(pid)
        cpu[pid] = (int(fields[11]) + int(fields[12])) / _TICKS
    return total, proportional


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            for line in handle:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _measure(
    args: list[str], env: dict[str, str] | None = None
) -> tuple[float, float, float, float]:
    """Run a command: wall seconds, peak MB of its process tree (RSS, then PSS) and the CPU
    seconds of the tree (each process as last seen), sampled from /proc: RSS and CPU every
    50 ms, the list of processes and PSS every 0.5 s."""
    started = time.perf_counter()
    process = subprocess.Popen(
        args,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    peak = peak_pss = 0
    cpu: dict[int, float] = {}
    done = threading.Event()

    sampler_cpu = 0.0

    def sample() -> None:
        # RSS every 50 ms; the process list (a read of every /proc/N/stat) and PSS (a walk of
        # each process's page tables) every 0.5 s: sampling all of it every 50 ms took 3.8 CPU
        # s of a 20.8 s crawl of 1,000 sources, on the cores the crawl was measured on.
        nonlocal peak, peak_pss, sampler_cpu
        pids: list[int] = []
        tick = 0
        while not done.wait(0.05):
            slow = tick % 10 == 0
            if slow:
                pids = [process.pid, *descendants(process.pid)]
            rss, pss = _tree_rss(pids, cpu, pss=slow)
            peak, peak_pss = max(peak, rss), max(peak_pss, pss)
            tick += 1
        sampler_cpu = time.thread_time()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = process.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    _SAMPLER_CPU.append(sampler_cpu)
    if process.returncode not in (0, 1):
        raise RuntimeError(f"{args[:4]} failed: {err.decode()[-2000:]}")
    return seconds, peak / 2**20, peak_pss / 2**20, sum(cpu.values())


def _count(db_url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("select count(*) from article")).scalar_one())
    finally:
        engine.dispose()


def _fresh_pg(name: str) -> str | None:
    """A new empty PostgreSQL database, or None when the server is not there."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    engine = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'drop database if exists "{name}"'))
            connection.execute(text(f'create database "{name}"'))
    except OperationalError:
        return None
    finally:
        engine.dispose()
    return f"{PG_SERVER}/{name}"


def _sources_yaml(
    urls: list[str], data_dir: Path, *, pages: bool = False, all_text: bool = False
) -> str:
    lines = [
        "settings:",
        f"  data_dir: {data_dir}",
        # null: every item gets its text (and page), however old; the default, 30, leaves out
        # the items the next upkeep would prune anyway
        *(["  retention_days: null"] if all_text else []),
        "  fetch:",
        "    allow_private_networks: true",  # the farm is on 127.0.0.1
        # without pages, item links point off the machine: never fetch them
        *([] if pages else ["    short_text_chars: 0"]),
        "sources:",
    ]
    for j, url in enumerate(urls):
        lines += [f"  - id: s{j}", f"    name: Source {j}", f"    url: {url}"]
    return "\n".join(lines) + "\n"


def crawl_twice(
    urls: list[str], tmp: Path, db_url: str, *, pages: bool = False, all_text: bool = False
) -> tuple[Measured, Measured]:
    """The project: a first crawl into an empty database, then a second (all 304), both on
    the day the feeds were captured (CAPTURED)."""
    first = crawl_once(urls, tmp, db_url, pages=pages, all_text=all_text)
    return first, crawl_once(urls, tmp, db_url, pages=pages, all_text=all_text)


def crawl_once(
    urls: list[str], tmp: Path, db_url: str, *, pages: bool = False, all_text: bool = False
) -> Measured:
    """One ``aggregator crawl --force`` of ``urls`` into ``db_url``, measured."""
    config = tmp / f"sources-{len(urls)}.yaml"
    yaml = _sources_yaml(urls, tmp / "data", pages=pages, all_text=all_text)
    config.write_text(yaml, encoding="utf-8")
    command = [sys.executable, "-m", "aggregator", "crawl", "--force", "--config", str(config)]
    seconds, peak, pss, cpu = _measure([*command, "--now", CAPTURED, "--db", db_url])
    return Measured(seconds, peak, pss, cpu, _count(db_url))


def naive_crawl(urls_file: str, db_path: str, pages: bool = False) -> None:
    """What one would write first: fetch, parse, insert, one feed after the other; with
    ``pages``, each item whose text (its longest content or summary, tags removed) is under 400
    characters gets its page fetched and extracted with trafilatura, there and then."""
    import urllib.request

    import feedparser

    db = sqlite3.connect(db_path)
    db.execute(
        "create table if not exists article (id text primary key, source text, title text, "
        "summary text, published text)"
    )
    for number, url in enumerate(json.loads(Path(urls_file).read_text())):
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                body = response.read()
        except OSError:
            continue
        parsed = feedparser.parse(body)
        rows = [
            (
                entry.get("link") or entry.get("id") or "",
                f"s{number}",
                entry.get("title", ""),
                _naive_page(entry) if pages else entry.get("summary", ""),
                entry.get("published", ""),
            )
            for entry in parsed.entries
        ]
        db.executemany("insert or ignore into article values (?, ?, ?, ?, ?)", rows)
        db.commit()
    db.close()


def _naive_page(entry: Any) -> str:
    """The naive crawler's text of an item: its page's, when its summary is short."""
    import urllib.request

    import trafilatura

    contents = [str(c.get("value", "")) for c in entry.get("content", [])]
    summary = max([str(entry.get("summary", "")), *contents], key=len)
    link = entry.get("link", "")
    if len(" ".join(re.sub(r"<[^>]*>", " ", summary).split())) >= 400 or not link:
        return summary
    try:
        with urllib.request.urlopen(link, timeout=30) as response:
            html = response.read()
    except OSError:
        return summary
    return trafilatura.extract(html, url=link, with_metadata=True) or summary


def naive_pages(urls: list[str], tmp: Path) -> Measured:
    """The naive crawler with pages (see naive_crawl), once, into a new database."""
    urls_file, db_path = tmp / "naive-page-urls.json", tmp / "naive-pages.db"
    urls_file.write_text(json.dumps(urls))
    code = (
        "import sys; from benchmarks.bench_crawl import naive_crawl; "
        "naive_crawl(sys.argv[1], sys.argv[2], pages=True)"
    )
    seconds, peak, pss, cpu = _measure([sys.executable, "-c", code, str(urls_file), str(db_path)])
    with sqlite3.connect(db_path) as db:
        count = int(db.execute("select count(*) from article").fetchone()[0])
    return Measured(seconds, peak, pss, cpu, count)


def _pg_alternated(urls: list[str], tmp: Path, rounds: int) -> None:
    """PostgreSQL/SQLite from crawls run in turn (a first crawl and a second each), the order
    swapped every round, as the median of the rounds' ratios: the table's one pair of runs
    moves with the machine's load (0.88 to 1.32 over one day's runs). The server's CPU
    seconds are printed too: they compete with the crawl's own for the same cores."""
    ratios: dict[str, list[float]] = {"first": [], "second": []}
    for number in range(rounds):
        taken: dict[str, tuple[Measured, Measured]] = {}
        server = 0.0
        for kind in ("sqlite", "pg") if number % 2 == 0 else ("pg", "sqlite"):
            if kind == "sqlite":
                db_url: str | None = f"sqlite:///{tmp / f'alternated-{number}.db'}"
            else:
                db_url = _fresh_pg(f"bench_crawl_alternated_{number}")
            if db_url is None:
                return
            before = _postgres_cpu()
            taken[kind] = crawl_twice(urls, tmp, db_url)
            if kind == "pg":
                server = _postgres_cpu() - before
        (lite_first, lite_second), (pg_first, pg_second) = taken["sqlite"], taken["pg"]
        ratios["first"].append(pg_first.seconds / lite_first.seconds)
        ratios["second"].append(pg_second.seconds / lite_second.seconds)
        print(
            f"{'':<24} round {number + 1}: SQLite {lite_first.seconds:.1f} + "
            f"{lite_second.seconds:.1f} s, PostgreSQL {pg_first.seconds:.1f} + "
            f"{pg_second.seconds:.1f} s ({server:.1f} CPU s in the server): "
            f"{ratios['first'][-1]:.2f}, {ratios['second'][-1]:.2f}"
        )
    medians = []
    for turn, values in ratios.items():
        middle, low, high = _spread(values)
        medians.append(f"{turn} {middle:.2f} ({low:.2f}-{high:.2f})")
    print(
        f"PostgreSQL/SQLite time, {len(urls):,} sources, {rounds} rounds in turn, median "
        f"(range): {', '.join(medians)}"
    )


def _spread(values: list[float]) -> tuple[float, float, float]:
    """The median of the rounds (the upper one of an even count), the lowest and the highest."""
    ordered = sorted(values)
    return ordered[len(ordered) // 2], ordered[0], ordered[-1]


def _postgres_cpu() -> float:
    """CPU seconds so far of the machine's postgres processes, those that ended included
    (their time is in the postmaster's children totals): the server's share of a crawl."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_bytes()
        except OSError:
            continue
        name, _, rest = raw.partition(b" (")[2].rpartition(b") ")
        if name == b"postgres":
            fields = rest.split()
            total += sum(int(f) for f in fields[11:15]) / _TICKS
    return total


def naive_twice(urls: list[str], tmp: Path) -> tuple[Measured, Measured]:
    urls_file, db_path = tmp / "naive-urls.json", tmp / "naive.db"
    urls_file.write_text(json.dumps(urls))
    code = (
        "import sys; from benchmarks.bench_crawl import naive_crawl; "
        "naive_crawl(sys.argv[1], sys.argv[2])"
    )
    out = []
    for _ in range(2):
        seconds, peak, pss, cpu = _measure(
            [sys.executable, "-c", code, str(urls_file), str(db_path)]
        )
        with sqlite3.connect(db_path) as db:
            count = int(db.execute("select count(*) from article").fetchone()[0])
        out.append(Measured(seconds, peak, pss, cpu, count))
    return out[0], out[1]


def _row(label: str, sources: int, first: Measured, second: Measured, base: float) -> str:
    """One table row; ``base`` is the naive crawler's feeds/s (0 for its own row)."""
    return (
        f"{label:<24} {sources:>7,} {first.seconds:>7.1f} {first.cpu:>6.1f} "
        f"{first.rate(sources):>8.1f} "
        f"{first.articles / first.seconds:>10,.0f} {max(first.peak_mb, second.peak_mb):>8,.0f} "
        f"{max(first.peak_pss_mb, second.peak_pss_mb):>7,.0f} "
        f"{second.seconds:>8.1f} {first.rate(sources) / base if base else 1:>6.1f}"
    )


def run() -> None:
    if not (FEEDS / "benchmark_data_index.tsv").is_file():
        print(f"skipped: {FEEDS.resolve()} not found (fresh clone without ../shared/data)")
        return
    sizes = [int(s) for s in os.environ.get("BENCH_CRAWL_SIZES", "200,1000,10000").split(",")]
    use_pg = os.environ.get("BENCH_CRAWL_PG", "1") != "0"
    header = (
        f"{'crawler':<24} {'sources':>7} {'first s':>7} {'CPU s':>6} {'feeds/s':>8} "
        f"{'articles/s':>10} "
        f"{'peak MB':>8} {'PSS MB':>7} {'second s':>8} {'x naive':>6}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-crawl-") as tmp_name, FeedFarm() as farm:
        tmp = Path(tmp_name)
        naive_urls = farm.source_urls(NAIVE_SOURCES)
        naive_first, naive_second = naive_twice(naive_urls, tmp)
        print(header)
        print(_row("naive (urllib+feedparser)", NAIVE_SOURCES, naive_first, naive_second, 0))
        naive_rate = naive_first.rate(NAIVE_SOURCES)
        naive_second_rate = NAIVE_SOURCES / naive_second.seconds
        for size in sizes:
            urls = farm.source_urls(size)
            sqlite_url = f"sqlite:///{tmp / f'crawl-{size}.db'}"
            first, second = crawl_twice(urls, tmp, sqlite_url)
            print(_row("aggregator, SQLite", size, first, second, naive_rate))
            print(
                f"{'':<24} second crawl {size / second.seconds:,.0f} feeds/s = "
                f"{size / second.seconds / naive_second_rate:.1f}x the naive crawler's second"
            )
            every_sqlite = f"sqlite:///{tmp / f'crawl-{size}-all.db'}"
            every, every_second = crawl_twice(urls, tmp, every_sqlite, all_text=True)
            print(_row("  every item's text", size, every, every_second, naive_rate))
            pg_url = _fresh_pg(f"bench_crawl_{size}") if use_pg else None
            if pg_url is not None:
                pg_first, pg_second = crawl_twice(urls, tmp, pg_url)
                print(_row("aggregator, PostgreSQL", size, pg_first, pg_second, naive_rate))
                print(
                    f"{'':<24} PostgreSQL/SQLite time: first "
                    f"{pg_first.seconds / first.seconds:.2f}, second "
                    f"{pg_second.seconds / second.seconds:.2f}"
                )
        alternated = min(sizes, key=lambda n: abs(n - 1000))
        if use_pg and PG_ROUNDS > 0:
            _pg_alternated(farm.source_urls(alternated), tmp, PG_ROUNDS)
    print("x naive: the project's feeds/s over the naive crawler's, first crawl")
    print(f"the crawls run as on the day the feeds were captured (--now {CAPTURED}): items older")
    print("than retention_days (30) are stored without text or page, as upkeep would prune")
    print("them; 'every item's text' sets retention_days: null, so every item's text is made")
    print(
        f"(sampling memory took {max(_SAMPLER_CPU, default=0):.1f} CPU s at most per measured run, "
        "on the same cores)"
    )
    print("peak MB: the process tree's resident memory summed per process (pages its forked")
    print("workers share count once each); PSS MB: the same with shared pages divided")
    if os.environ.get("BENCH_CRAWL_PAGES", "1") != "0" and PAGES.is_dir():
        _pages()


def _pages() -> None:
    """Feeds whose items link to article pages on the farm: pages fetched and extracted, in
    PAGE_ROUNDS first crawls (each into a new database), beside the naive crawler once.

    A first crawl of 50 sources takes about 10 s, in which the machine's speed moved the
    result by a quarter in one session (41 to 56 pages/s for the same code): one crawl is a
    sample of that, the median of several a steadier figure, and the range shows the spread."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp_name,
        FeedFarm(pages=True) as farm,
    ):
        tmp = Path(tmp_name)
        count = int(os.environ.get("BENCH_CRAWL_PAGE_SOURCES", "50"))
        urls = farm.source_urls(count)
        runs: list[tuple[Measured, int]] = []
        for number in range(max(PAGE_ROUNDS, 1)):
            before = farm.served()["pages"]
            db_url = f"sqlite:///{tmp / f'pages-{number}.db'}"
            first = crawl_once(urls, tmp, db_url, pages=True, all_text=True)
            runs.append((first, farm.served()["pages"] - before))
        before = farm.served()["pages"]
        naive = naive_pages(urls, tmp)
        naive_count = farm.served()["pages"] - before
        rate, low, high = _spread([pages / first.seconds for first, pages in runs])
        naive_rate = naive_count / naive.seconds
        first, pages = runs[0]
        each = ", ".join(
            f"{taken.seconds:.1f} s ({taken.cpu:.0f} CPU s, {fetched / taken.seconds:.0f}/s)"
            for taken, fetched in runs
        )
        print(
            f"with article pages: {count} sources, {first.articles:,} articles and {pages:,} "
            f"article pages fetched and extracted per first crawl; {len(runs)} crawls, each "
            f"into a new database: {each}"
        )
        print(
            f"  median {rate:.0f} pages/s (range {low:.0f}-{high:.0f}); peak "
            f"{max(r.peak_mb for r, _ in runs):,.0f} MB RSS, "
            f"{max(r.peak_pss_mb for r, _ in runs):,.0f} MB PSS"
        )
        print(
            f"  naive (urllib+feedparser+trafilatura.extract, one page after the other): "
            f"{naive_count:,} pages in {naive.seconds:.1f} s ({naive.cpu:.0f} CPU s): "
            f"{naive_rate:.0f} pages/s; the project's median {rate / naive_rate:.1f}x"
        )
