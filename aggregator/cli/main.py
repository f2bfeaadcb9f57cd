"""The command line: parse arguments, call the pipeline, print. Nothing else lives here."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from aggregator import __version__
from aggregator.cli.common import (
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    add_command,
    common_options,
    config_from,
    console,
    open_database,
    parse_now,
    window_from,
    window_hours,
    window_options,
)
from aggregator.crawl.crawl import CrawlReport, crawl
from aggregator.crawl.status import SourceStatus, status_report
from aggregator.errors import ConfigError, UserError
from aggregator.pipeline import (
    cluster_stage,
    current_stories,
    output_dir,
    render_stage,
    run_lock,
    run_once,
    summarise_stage,
    templates_dir,
)
from aggregator.sources.load import Config
from aggregator.store.storage import Storage
from aggregator.times import utcnow
from aggregator.urls import http_url

if TYPE_CHECKING:
    pass


# -- commands -------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from aggregator.demo.server import DemoServer, demo_config

    out = Path(args.out).resolve()
    with tempfile.TemporaryDirectory(prefix="aggregator-demo-") as data_dir, DemoServer() as srv:
        config = demo_config(srv.base_url, out_dir=out, data_dir=Path(data_dir))
        db_url = args.db or config.settings.resolved_db_url(config.base_dir)
        print(f"Serving the demo outlets on {srv.base_url} (127.0.0.1 only)")
        with Storage(db_url) as storage:
            report = run_once(config, storage, out_dir=out)
    _print_run(report)
    print(f"\nThe demo site is at {report.render.path / 'index.html'}")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    config = config_from(args, required=True)
    with open_database(args, config) as storage:
        report = run_once(
            config,
            storage,
            now=args.now,
            window_hours=window_hours(args, config),
            out_dir=output_dir(config, args.out),
            do_crawl=not args.no_crawl,
        )
    _print_run(report)
    if report.crawl and report.crawl.outcomes and report.crawl.failed == len(report.crawl.outcomes):
        return EXIT_PARTIAL
    return EXIT_OK


def cmd_crawl(args: argparse.Namespace) -> int:
    config = config_from(args, required=True)
    now = args.now or utcnow()
    with open_database(args, config) as storage, run_lock(config):
        if sys.stdout.isatty():
            report = _crawl_with_progress(config, storage, now, force=args.force)
        else:
            report = crawl(config, storage, now=now, force=args.force)
    _print_crawl(report)
    return EXIT_PARTIAL if report.all_failed else EXIT_OK


def _crawl_with_progress(
    config: Config, storage: Storage, now: datetime, *, force: bool
) -> CrawlReport:
    """The crawl with a progress bar (only when stdout is a terminal)."""
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("crawling", total=len(config.enabled_sources))
        return crawl(config, storage, now=now, force=force, progress=lambda _id: bar.advance(task))


def cmd_status(args: argparse.Namespace) -> int:
    config = config_from(args, required=True)
    now = args.now or utcnow()
    with open_database(args, config) as storage:
        for source_id in args.clear or ():
            if config.source(source_id) is None:
                raise UserError(f"no source {source_id!r} in {config.path}")
            storage.clear_source_health(source_id)
            print(f"{source_id}: failures, waits and the gone flag cleared", file=sys.stderr)
        rows = status_report(config, storage, now)
    if args.json:
        print(json.dumps(_status_json(rows, now), ensure_ascii=False, indent=2))
    else:
        _print_status(rows, now)
    return EXIT_OK


def cmd_cluster(args: argparse.Namespace) -> int:
    config = config_from(args)
    window = window_from(args, config)
    with open_database(args, config) as storage, run_lock(config):
        report = cluster_stage(storage, config.settings, window)
    print(
        f"{report.articles} articles in {window.describe()} -> {report.stories} stories "
        f"({report.new_stories} new, {report.merged} merged)"
    )
    return EXIT_OK


def cmd_summarise(args: argparse.Namespace) -> int:
    config = config_from(args)
    window = window_from(args, config)
    with open_database(args, config) as storage, run_lock(config):
        report = summarise_stage(storage, config.settings, window)
    print(
        f"{report.considered} stories on the page: {report.written} summaries written "
        f"({report.llm} by the LLM, {report.fallbacks} fallbacks), {report.reused} unchanged"
    )
    return EXIT_OK


def cmd_render(args: argparse.Namespace) -> int:
    config = config_from(args)
    window = window_from(args, config)
    with open_database(args, config) as storage, run_lock(config):
        out = output_dir(config, args.out)
        report = render_stage(
            storage, config.settings, window, out, templates_dir=templates_dir(config)
        )
    print(f"{report.stories} stories rendered to {report.path}")
    return EXIT_OK


def cmd_schedule(args: argparse.Namespace) -> int:
    from aggregator.schedule import Cycle, build_scheduler

    config = config_from(args, required=True)
    with open_database(args, config) as storage:
        cycle = Cycle(config, storage, output_dir(config, args.out))
        scheduler = build_scheduler(cycle)
        s = config.settings
        print(
            f"Crawling every {s.crawl_interval_minutes:g} min, digest every "
            f"{s.digest_interval_minutes:g} min; Ctrl-C stops."
        )
        with contextlib.suppress(KeyboardInterrupt, SystemExit):
            scheduler.start()
    return EXIT_OK


def cmd_ingest(args: argparse.Namespace) -> int:
    from aggregator.jsonl import LineError, read_articles
    from aggregator.records import Article

    config = config_from(args)
    fetched_at = args.now or utcnow()
    articles: list[Article] = []
    errors: list[LineError] = []
    name = "<stdin>" if args.file == "-" else args.file
    try:
        stream: TextIO = (
            sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
        )
    except OSError as exc:
        raise UserError(f"{name}: cannot open: {exc.strerror}") from exc
    try:
        for _, item in read_articles(stream, fetched_at):
            (errors if isinstance(item, LineError) else articles).append(item)  # type: ignore[arg-type]
    except UnicodeDecodeError as exc:
        raise UserError(f"{name}: not UTF-8 text ({exc.reason})") from exc
    finally:
        if stream is not sys.stdin:
            stream.close()
    for err in errors:
        print(f"{name}:{err}", file=sys.stderr)
    with open_database(args, config) as storage:
        inserted = storage.add_articles(articles)
    print(
        f"{len(inserted)} articles stored, {len(articles) - len(inserted)} already present, "
        f"{len(errors)} bad lines"
    )
    return EXIT_PARTIAL if errors else EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from aggregator.jsonl import article_to_json, story_to_json, write_lines

    config = config_from(args)
    window = window_from(args, config)
    out: TextIO = sys.stdout if args.output in (None, "-") else open(args.output, "w")  # noqa: SIM115
    try:
        with open_database(args, config) as storage:
            if args.what == "articles":
                articles = storage.articles(since=window.since, until=window.until)
                count = write_lines(out, (article_to_json(a) for a in articles))
            else:
                stories, by_id = current_stories(storage, window, config.settings)
                stories.sort(key=lambda s: (s.updated or window.until, s.id), reverse=True)
                summaries = storage.summaries(s.id for s in stories)
                rows = (story_to_json(s, summaries.get(s.id), by_id) for s in stories)
                count = write_lines(out, rows)
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"{count} {args.what} exported from {window.describe()}", file=sys.stderr)
    return EXIT_OK


def cmd_extract(args: argparse.Namespace) -> int:
    from aggregator.extract import extract_page
    from aggregator.times import iso

    target: str = args.target
    if http_url(target):
        html, base = _download(target, config_from(args)), target
    else:
        try:
            html = Path(target).read_bytes()
        except OSError as exc:
            raise UserError(f"{target}: cannot read: {exc.strerror}") from exc
        base = args.url or ""
    page = extract_page(html, base)
    if page is None:
        raise UserError(f"{target}: no article text found")
    result = {
        "title": page.title,
        "author": page.author,
        "published": iso(page.published),
        "language": page.language,
        "image": page.image,
        "text": page.text,
    }
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return EXIT_OK


def _download(url: str, config: Config) -> bytes:
    import asyncio

    from aggregator.crawl.fetch import PAGE_ACCEPT, Fetcher
    from aggregator.records import FetchStatus

    async def get() -> bytes:
        async with Fetcher(config.settings.fetch) as fetcher:
            result = await fetcher.get(url, accept=PAGE_ACCEPT)
        if result.status is not FetchStatus.OK:
            raise UserError(f"{url}: {result.error or result.status.value}")
        return result.body

    return asyncio.run(get())


# -- output ---------------------------------------------------------------------------------------


def _print_crawl(report: CrawlReport) -> None:
    """One line per source with a problem (stderr), then the summary table (stdout)."""
    from rich.table import Table

    from aggregator.records import FetchStatus

    for outcome in report.outcomes:
        if outcome.status is FetchStatus.ERROR:
            print(f"  {outcome.source_id}: {outcome.error}", file=sys.stderr)
    for skipped in report.skipped:
        if skipped.gone:
            print(f"  {skipped.source_id}: {skipped.reason}", file=sys.stderr)
    table = Table(title="crawl", title_justify="left")
    headers = ("sources", "fetched", "not modified", "skipped", "failed", "new articles")
    for header in headers:
        table.add_column(header, justify="right")
    sources = len(report.outcomes) + len(report.skipped)
    counts = (sources, report.fetched, report.not_modified, len(report.skipped), report.failed)
    table.add_row(*(str(n) for n in (*counts, report.new_articles)))
    console().print(table)


def _when(value: datetime | None, now: datetime) -> str:
    from aggregator.crawl.due import describe_wait

    return "-" if value is None else describe_wait(value, now)


def _print_status(rows: Sequence[SourceStatus], now: datetime) -> None:
    from rich.table import Table

    table = Table(title=f"sources at {now:%Y-%m-%d %H:%M} UTC", title_justify="left")
    for header in ("source", "state", "last success", "failures", "next fetch", "24 h"):
        table.add_column(header, justify="right" if header in {"failures", "24 h"} else "left")
    table.add_column("last error", overflow="fold")
    for row in rows:
        due = _when(row.next_fetch, now) if row.next_fetch and row.next_fetch > now else "now"
        if row.state.value in {"gone", "disabled"}:
            due = "never"
        table.add_row(
            row.id,
            row.state.value,
            _when(row.last_success, now),
            str(row.consecutive_failures),
            due,
            str(row.articles_24h),
            row.last_error or "",
        )
    console().print(table)


def _status_json(rows: Sequence[SourceStatus], now: datetime) -> dict[str, object]:
    from aggregator.times import iso

    out: list[dict[str, object]] = []
    for row in rows:
        out.append(
            {
                "id": row.id,
                "name": row.name,
                "url": row.url,
                "state": row.state.value,
                "last_success": iso(row.last_success),
                "last_fetched": iso(row.last_fetched),
                "last_error": row.last_error,
                "consecutive_failures": row.consecutive_failures,
                "next_fetch": iso(row.next_fetch),
                "articles_24h": row.articles_24h,
            }
        )
    return {"generated": iso(now), "sources": out}


def _print_run(report: object) -> None:
    from aggregator.pipeline import RunReport

    assert isinstance(report, RunReport)
    if report.crawl is not None:
        _print_crawl(report.crawl)
    c, s, r = report.cluster, report.summarise, report.render
    print(f"cluster: {c.articles} articles -> {c.stories} stories ({c.new_stories} new)")
    print(
        f"summarise: {s.written} written ({s.llm} by the LLM, {s.fallbacks} fallbacks), "
        f"{s.reused} unchanged"
    )
    print(f"render: {r.stories} stories -> {r.path}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aggregator",
        description="A self-hosted, AI-curated news service: crawl the feeds in sources.yaml, "
        "group articles into stories, summarise each with cited sources, publish a static site.",
        epilog="Example:\n  aggregator demo            # the whole pipeline offline\n"
        "  aggregator run --config sources.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aggregator {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common, windowed = common_options(), window_options()

    p = add_command(
        sub,
        "demo",
        cmd_demo,
        "Run the whole pipeline offline on the bundled demo outlets and write the site.",
        "aggregator demo --out site",
        [common],
    )
    p.add_argument("--out", default="site", metavar="DIR", help="where to write the site")

    p = add_command(
        sub,
        "run",
        cmd_run,
        "One full cycle: crawl the sources, cluster, summarise and render the site.",
        "aggregator run --config sources.yaml --db postgresql+psycopg://user@host/news",
        [common, windowed],
    )
    p.add_argument("--out", metavar="DIR", help="site directory (default: output_dir)")
    p.add_argument("--no-crawl", action="store_true", help="skip the crawl (digest only)")

    p = add_command(
        sub,
        "crawl",
        cmd_crawl,
        "Fetch every enabled source that is due and store new articles.",
        "aggregator crawl --config sources.yaml\n"
        "aggregator crawl --force     # fetch sources that are not due yet too",
        [common, windowed],
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="ignore due times (interval, backoff, Retry-After); gone sources and robots.txt "
        "still apply",
    )
    p = add_command(
        sub,
        "status",
        cmd_status,
        "Show every source's health: state, last success and error, failures, next fetch.",
        "aggregator status --config sources.yaml\n"
        "aggregator status --json | jq '.sources[] | select(.state != \"ok\")'\n"
        "aggregator status --clear bbc-world   # fetch a gone or backing-off source again",
        [common],
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--clear",
        action="append",
        metavar="SOURCE_ID",
        help="forget a source's failures, waits and gone flag first (repeatable)",
    )
    p.add_argument(
        "--now",
        type=parse_now,
        default=None,
        metavar="ISO8601",
        help="pin the clock, e.g. 2026-11-26T08:00:00Z (default: the current time)",
    )
    add_command(
        sub,
        "cluster",
        cmd_cluster,
        "Group the window's articles into stories (ids stay stable across runs).",
        "aggregator cluster --window all",
        [common, windowed],
    )
    add_command(
        sub,
        "summarise",
        cmd_summarise,
        "Write cited summaries for the page's stories that changed (LLM or extractive).",
        "OPENAI_BASE_URL=http://127.0.0.1:11434/v1 aggregator summarise --window 24",
        [common, windowed],
    )
    p = add_command(
        sub,
        "render",
        cmd_render,
        "Render the discover page, story pages and feeds, swapped in atomically.",
        "aggregator render --out /var/www/news",
        [common, windowed],
    )
    p.add_argument("--out", metavar="DIR", help="site directory (default: output_dir)")
    p = add_command(
        sub,
        "schedule",
        cmd_schedule,
        "Run forever: crawl and digest on the intervals set in sources.yaml.",
        "aggregator schedule --config /etc/aggregator/sources.yaml",
        [common],
    )
    p.add_argument("--out", metavar="DIR", help="site directory (default: output_dir)")
    p = add_command(
        sub,
        "ingest",
        cmd_ingest,
        "Import articles from JSON Lines (url, title, text, source, published, language).",
        "aggregator ingest articles.jsonl\n"
        'echo \'{"url": "https://example.org/a", "title": "A"}\' | aggregator ingest -',
        [common, windowed],
    )
    p.add_argument("file", metavar="FILE.jsonl", help="the file to read, or - for stdin")
    p = add_command(
        sub,
        "export",
        cmd_export,
        "Write stories or articles of the window as JSON Lines.",
        "aggregator export stories --window all > stories.jsonl\n"
        "aggregator export articles --window 48 --output articles.jsonl",
        [common, windowed],
    )
    p.add_argument("what", choices=["articles", "stories"], help="what to export")
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    p = add_command(
        sub,
        "extract",
        cmd_extract,
        "Extract an article's text and metadata from a saved page or a URL, as JSON.",
        "aggregator extract page.html --url https://example.org/news/1\n"
        "aggregator extract https://example.org/news/1",
        [common],
    )
    p.add_argument("target", metavar="FILE_OR_URL", help="an HTML file or an http(s) URL")
    p.add_argument("--url", metavar="URL", help="the page's address, for relative links")

    from aggregator.cli.sources import add_sources_commands

    add_sources_commands(sub, common)  # check, add, import-opml, export-opml
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        # the crawl summary prints one line per problem source; its log line would repeat it
        logging.getLogger("aggregator.crawl").setLevel(logging.ERROR)
    try:
        return int(args.handler(args))
    except UserError as exc:
        for problem in exc.problems if isinstance(exc, ConfigError) else [str(exc)]:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
