"""`aggregator sources ...`: check (and probe) sources.yaml, add a feed, OPML import and export."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from aggregator.cli.common import (
    EXIT_OK,
    EXIT_PARTIAL,
    Shared,
    Subparsers,
    add_command,
    config_from,
    config_path,
)
from aggregator.errors import UserError

if TYPE_CHECKING:
    from pathlib import Path

    from aggregator.settings import FetchSettings


def cmd_check(args: argparse.Namespace) -> int:
    config = config_from(args, required=True, crawls=True)
    enabled = config.enabled_sources
    languages = sorted({s.language for s in enabled if s.language})
    categories = sorted({s.category for s in enabled})
    print(
        f"{config.path}: OK, {len(config.sources)} sources ({len(enabled)} enabled) in "
        f"{len(categories)} categories, languages: {', '.join(languages) or '-'}"
    )
    if not args.probe:
        return EXIT_OK
    from aggregator.cli.output import print_probes
    from aggregator.crawl.probe import probe_all

    probes = probe_all([s.url for s in enabled], config.settings.fetch)
    print_probes(enabled, probes)
    failed = sum(1 for p in probes if not p.ok)
    print(f"probe: {len(probes)} sources, {len(probes) - failed} OK, {failed} failed")
    return EXIT_PARTIAL if failed else EXIT_OK


def add_check(sub: Subparsers, shared: Shared) -> None:
    p = add_command(
        sub,
        "check",
        cmd_check,
        "Validate sources.yaml (errors name the file, line and field); --probe fetches each "
        "enabled source once and shows status, format, items, newest date and full text.",
        "aggregator sources check --config sources.yaml\n"
        "aggregator sources check --probe   # exit 1 when a source fails",
        [shared.common],
    )
    p.add_argument("--probe", action="store_true", help="fetch every enabled source once")


def _fetch_settings(path: Path) -> FetchSettings:
    """The file's fetch settings (environment applied); the defaults for a file not made yet."""
    from aggregator.settings import Settings, apply_environment
    from aggregator.sources.load import load_config

    if path.exists():
        return load_config(path).settings.fetch
    return apply_environment(Settings()).fetch


def cmd_add(args: argparse.Namespace) -> int:
    from aggregator.crawl.probe import discover
    from aggregator.errors import DuplicateSourceError
    from aggregator.sources.edit import NewSource, SourcesDocument

    path = config_path(args)
    settings = _fetch_settings(path)  # also validates the file before any network work
    doc = SourcesDocument(path)
    found = doc.existing(args.url)
    if found is not None:
        raise UserError(f"{args.url} is already in {path} as '{found}'")
    discovered = discover(args.url, settings)
    probe = discovered.probe
    new = NewSource(
        url=discovered.url,
        name=args.name or probe.title or "",
        id=args.id or "",
        category=args.category or "",
    )
    try:
        new_id = doc.add(new)
    except DuplicateSourceError as exc:
        raise UserError(f"{exc.url} is already in {path} as '{exc.existing}'") from exc
    doc.save()
    print(
        f"added '{new_id}' ({discovered.url}): {probe.format or 'feed'}, {probe.items} items, "
        f"{'full text' if probe.full_text else 'teasers'} -> {path}"
    )
    return EXIT_OK


def add_add(sub: Subparsers, shared: Shared) -> None:
    p = add_command(
        sub,
        "add",
        cmd_add,
        "Add a feed, given its URL or its site's home page (the feed is discovered), to "
        "sources.yaml, keeping the file's comments and layout.",
        "aggregator sources add https://www.theguardian.com/world --category world",
        [shared.common],
    )
    p.add_argument("url", metavar="URL", help="a feed URL or a site's home page")
    p.add_argument("--id", metavar="ID", help="the source id (default: from the feed's title)")
    p.add_argument("--name", metavar="NAME", help="display name (default: the feed's title)")
    p.add_argument("--category", metavar="C", help="category (default: general)")


def cmd_import_opml(args: argparse.Namespace) -> int:
    from aggregator.sources.edit import import_opml

    path = config_path(args)
    report = import_opml(args.file, path, category=args.category)
    for url, reason in report.skipped:
        print(f"  skipped {url}: {reason}", file=sys.stderr)
    print(
        f"{len(report.added)} sources added to {path}, {len(report.skipped)} skipped "
        f"(already listed or invalid), {report.unusable} outlines without an http(s) feed URL"
    )
    return EXIT_OK


def add_import_opml(sub: Subparsers, shared: Shared) -> None:
    p = add_command(
        sub,
        "import-opml",
        cmd_import_opml,
        "Add the feeds of an OPML file to sources.yaml; feeds already listed are skipped.",
        "aggregator sources import-opml subscriptions.opml --category tech",
        [shared.common],
    )
    p.add_argument("file", metavar="FILE", help="an OPML 1.0/2.0 file")
    p.add_argument("--category", metavar="C", help="category for every imported feed")


def cmd_export_opml(args: argparse.Namespace) -> int:
    from aggregator.sources.opml import export_opml

    config = config_from(args, required=True)
    data = export_opml(config)
    if args.output in (None, "-"):
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        from pathlib import Path

        from aggregator.sources.edit import write_atomically

        write_atomically(Path(args.output), data.decode("utf-8"))
        print(f"{len(config.sources)} sources written to {args.output}", file=sys.stderr)
    return EXIT_OK


def add_export_opml(sub: Subparsers, shared: Shared) -> None:
    p = add_command(
        sub,
        "export-opml",
        cmd_export_opml,
        "Write the sources as OPML 2.0 (one folder per category), for a feed reader.",
        "aggregator sources export-opml --output sources.opml",
        [shared.common],
    )
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")


def cmd_report(args: argparse.Namespace) -> int:
    import json

    from aggregator.cli.common import now_from, open_database
    from aggregator.cli.output import print_sources_report, sources_report_json
    from aggregator.report import sources_report

    config = config_from(args, required=True)
    with open_database(args, config) as storage:
        report = sources_report(config, storage, now_from(args), args.days)
    if args.json:
        print(json.dumps(sources_report_json(report), ensure_ascii=False, indent=2))
    else:
        print_sources_report(report)
    return EXIT_OK


def _days(value: str) -> float:
    try:
        days = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number of days") from None
    if days <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 days")
    return days


def add_report(sub: Subparsers, shared: Shared) -> None:
    p = add_command(
        sub,
        "report",
        cmd_report,
        "For editors: per source over the last N days, its articles, how many reached a hot "
        "story, the stories only it covered, its repeats of other sources, its failures and "
        "its delay behind the first report; the sources to fix, drop or weight up come first.",
        "aggregator sources report --days 14\n"
        "aggregator sources report --json | jq '.sources[] | select(.verdict == \"drop\")'",
        [shared.common, shared.clock],
    )
    p.add_argument(
        "--days", type=_days, default=7.0, metavar="N", help="the period (default: 7 days)"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def add_sources(sub: Subparsers, shared: Shared) -> None:
    """The ``sources`` command and its actions."""
    sources = sub.add_parser(
        "sources",
        help="Work with sources.yaml: check, probe, add a feed, import or export OPML, report.",
        description="Work with sources.yaml: check, probe, add a feed, import or export OPML, "
        "report on what each source brought.",
        epilog="Example:\n  aggregator sources check --probe --config sources.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = sources.add_subparsers(dest="sources_command", metavar="ACTION", required=True)
    for add in (add_check, add_add, add_import_opml, add_export_opml, add_report):
        add(actions, shared)


COMMANDS = (add_sources,)
