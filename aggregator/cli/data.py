"""Data in and out as files: ``ingest`` and ``export`` (JSON Lines), ``extract`` (one page)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import BinaryIO, TextIO

from aggregator.cli.common import (
    EXIT_OK,
    EXIT_PARTIAL,
    Shared,
    Subparsers,
    add_command,
    config_from,
    now_from,
    open_database,
    window_from,
)
from aggregator.errors import UserError


def cmd_ingest(args: argparse.Namespace) -> int:
    from aggregator.jsonl import ingest
    from aggregator.pipeline import run_lock

    config = config_from(args)
    name = "<stdin>" if args.file == "-" else args.file
    try:
        stream: BinaryIO = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    except OSError as exc:
        raise UserError(f"{name}: cannot open: {exc.strerror}") from exc
    try:
        # under the run lock: a crawl or a clustering never sees half a file's articles, and
        # ingest's id lookup never races another writer
        with open_database(args, config) as storage, run_lock(config, storage):
            report = ingest(stream, storage, now_from(args))
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    for err in report.errors:
        print(f"{name}:{err}", file=sys.stderr)
    print(
        f"{report.stored} articles stored, {report.present} already present, "
        f"{len(report.errors)} bad lines"
    )
    return EXIT_PARTIAL if report.errors else EXIT_OK


def add_ingest(sub: Subparsers, shared: Shared) -> None:
    p = add_command(
        sub,
        "ingest",
        cmd_ingest,
        "Import articles from JSON Lines (url, title, text, source, published, language).",
        "aggregator ingest articles.jsonl\n"
        'echo \'{"url": "https://example.org/a", "title": "A"}\' | aggregator ingest -',
        [shared.common, shared.clock],
    )
    p.add_argument("file", metavar="FILE.jsonl", help="the file to read, or - for stdin")


def cmd_export(args: argparse.Namespace) -> int:
    from aggregator.pipeline import export

    config = config_from(args)
    window = window_from(args, config)
    out: TextIO = sys.stdout if args.output in (None, "-") else open(args.output, "w")  # noqa: SIM115
    try:
        with open_database(args, config) as storage:
            count = export(args.what, storage, config.settings, window, out)
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"{count} {args.what} exported from {window.describe()}", file=sys.stderr)
    return EXIT_OK


def add_export(sub: Subparsers, shared: Shared) -> None:
    p = add_command(
        sub,
        "export",
        cmd_export,
        "Write stories or articles of the window as JSON Lines.",
        "aggregator export stories --window all > stories.jsonl\n"
        "aggregator export articles --window 48 --output articles.jsonl",
        [shared.common, shared.window],
    )
    p.add_argument("what", choices=["articles", "stories"], help="what to export")
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")


def cmd_extract(args: argparse.Namespace) -> int:
    from aggregator.crawl.probe import extract_target
    from aggregator.times import iso

    page = extract_target(args.target, config_from(args).settings.fetch, base_url=args.url or "")
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


def add_extract(sub: Subparsers, shared: Shared) -> None:
    p = add_command(
        sub,
        "extract",
        cmd_extract,
        "Extract an article's text and metadata from a saved page or a URL, as JSON.",
        "aggregator extract page.html --url https://example.org/news/1\n"
        "aggregator extract https://example.org/news/1",
        [shared.common],
    )
    p.add_argument("target", metavar="FILE_OR_URL", help="an HTML file or an http(s) URL")
    p.add_argument("--url", metavar="URL", help="the page's address, for relative links")


COMMANDS = (add_ingest, add_export, add_extract)
