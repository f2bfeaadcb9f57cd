"""`aggregator sources ...`: check (and probe) sources.yaml, add a feed, OPML import and export."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from aggregator.cli.common import EXIT_OK, EXIT_PARTIAL, add_command, config_from
from aggregator.crawl.probe import Probe, discover, probe_all
from aggregator.errors import DuplicateSourceError, OpmlError, UserError
from aggregator.settings import DEFAULT_CONFIG, FetchSettings, Settings, apply_environment
from aggregator.sources.edit import NewSource, SourcesDocument, add_many, write_atomically
from aggregator.sources.load import Config, Source, load_config
from aggregator.sources.opml import ExportFeed, read_opml, write_opml
from aggregator.urls import absolute_url

# -- commands -------------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    config = config_from(args, required=True)
    enabled = config.enabled_sources
    languages = sorted({s.language for s in enabled if s.language})
    categories = sorted({s.category for s in enabled})
    print(
        f"{config.path}: OK, {len(config.sources)} sources ({len(enabled)} enabled) in "
        f"{len(categories)} categories, languages: {', '.join(languages) or '-'}"
    )
    if not args.probe:
        return EXIT_OK
    probes = probe_all([s.url for s in enabled], config.settings.fetch)
    _print_probes(enabled, probes)
    failed = sum(1 for p in probes if not p.ok)
    print(f"probe: {len(probes)} sources, {len(probes) - failed} OK, {failed} failed")
    return EXIT_PARTIAL if failed else EXIT_OK


def _print_probes(sources: Sequence[Source], probes: Sequence[Probe]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False)
    for column in ("source", "status", "format", "items", "newest item", "full text", "problem"):
        table.add_column(column, overflow="fold")
    for source, probe in zip(sources, probes, strict=True):
        newest = probe.newest.strftime("%Y-%m-%d %H:%M") if probe.newest else "-"
        full = ("yes" if probe.full_text else "teaser") if probe.ok and probe.items else "-"
        table.add_row(
            source.id,
            probe.status if probe.ok else f"[red]{probe.status}[/red]",
            probe.format or "-",
            str(probe.items),
            newest,
            full,
            probe.error,
        )
    width = None if sys.stdout.isatty() else 160
    Console(width=width, soft_wrap=False, highlight=False).print(table)


def _config_path(args: argparse.Namespace) -> Path:
    import os

    return Path(args.config or os.environ.get("AGGREGATOR_CONFIG") or DEFAULT_CONFIG)


def _fetch_settings(path: Path) -> FetchSettings:
    """The file's fetch settings (environment applied); the defaults for a file not made yet."""
    if path.exists():
        return load_config(path).settings.fetch
    return apply_environment(Settings()).fetch


def cmd_add(args: argparse.Namespace) -> int:
    path = _config_path(args)
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


def cmd_import_opml(args: argparse.Namespace) -> int:
    try:
        feeds = read_opml(Path(args.file).read_bytes())
    except OSError as exc:
        raise UserError(f"{args.file}: cannot read: {exc.strerror}") from exc
    except OpmlError as exc:
        raise UserError(f"{args.file}: {exc}") from exc
    path = _config_path(args)
    doc = SourcesDocument(path)
    new = [
        NewSource(
            url=f.url,
            name=f.title,
            category=args.category or f.category,
            language=f.language,
        )
        for f in feeds
        if absolute_url(f.url)
    ]
    unusable = len(feeds) - len(new)
    added, skipped = add_many(doc, new)
    if added:
        doc.save()
    for url, reason in skipped:
        print(f"  skipped {url}: {reason}", file=sys.stderr)
    print(
        f"{len(added)} sources added to {path}, {len(skipped)} skipped "
        f"(already listed or invalid), {unusable} outlines without an http(s) feed URL"
    )
    return EXIT_OK


def cmd_export_opml(args: argparse.Namespace) -> int:
    config: Config = config_from(args, required=True)
    feeds = (
        ExportFeed(url=s.url, name=s.name, category=s.category, language=s.language)
        for s in config.sources
    )
    data = write_opml(feeds, title=config.settings.title)
    if args.output in (None, "-"):
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        write_atomically(Path(args.output), data.decode("utf-8"))
        print(f"{len(config.sources)} sources written to {args.output}", file=sys.stderr)
    return EXIT_OK


# -- parser ---------------------------------------------------------------------------------------


def add_sources_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """The ``sources`` command and its actions."""
    sources = sub.add_parser(
        "sources",
        help="Work with sources.yaml: check, probe, add a feed, import or export OPML.",
        description="Work with sources.yaml: check, probe, add a feed, import or export OPML.",
        epilog="Example:\n  aggregator sources check --probe --config sources.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = sources.add_subparsers(dest="sources_command", metavar="ACTION", required=True)
    p = add_command(
        actions,
        "check",
        cmd_check,
        "Validate sources.yaml (errors name the file, line and field); --probe fetches each "
        "enabled source once and shows status, format, items, newest date and full text.",
        "aggregator sources check --config sources.yaml\n"
        "aggregator sources check --probe   # exit 1 when a source fails",
        [common],
    )
    p.add_argument("--probe", action="store_true", help="fetch every enabled source once")
    p = add_command(
        actions,
        "add",
        cmd_add,
        "Add a feed, given its URL or its site's home page (the feed is discovered), to "
        "sources.yaml, keeping the file's comments and layout.",
        "aggregator sources add https://www.theguardian.com/world --category world",
        [common],
    )
    p.add_argument("url", metavar="URL", help="a feed URL or a site's home page")
    p.add_argument("--id", metavar="ID", help="the source id (default: from the feed's title)")
    p.add_argument("--name", metavar="NAME", help="display name (default: the feed's title)")
    p.add_argument("--category", metavar="C", help="category (default: general)")
    p = add_command(
        actions,
        "import-opml",
        cmd_import_opml,
        "Add the feeds of an OPML file to sources.yaml; feeds already listed are skipped.",
        "aggregator sources import-opml subscriptions.opml --category tech",
        [common],
    )
    p.add_argument("file", metavar="FILE", help="an OPML 1.0/2.0 file")
    p.add_argument("--category", metavar="C", help="category for every imported feed")
    p = add_command(
        actions,
        "export-opml",
        cmd_export_opml,
        "Write the sources as OPML 2.0 (one folder per category), for a feed reader.",
        "aggregator sources export-opml --output sources.opml",
        [common],
    )
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
