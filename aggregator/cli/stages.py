"""One stage at a time: ``cluster``, ``summarise``, ``render``, each under the run lock."""

from __future__ import annotations

import argparse

from aggregator.cli.common import (
    EXIT_OK,
    Shared,
    Subparsers,
    add_command,
    stage_run,
)


def cmd_cluster(args: argparse.Namespace) -> int:
    from aggregator.pipeline import cluster_stage

    with stage_run(args) as (config, window, storage):
        report = cluster_stage(storage, config.settings, window)
    print(
        f"{report.articles} articles in {window.describe()} -> {report.stories} stories "
        f"({report.new_stories} new, {report.merged} merged)"
    )
    if report.uncertain:
        from aggregator.cli.output import cluster_review

        print(cluster_review(report))
    return EXIT_OK


def add_cluster(sub: Subparsers, shared: Shared) -> None:
    add_command(
        sub,
        "cluster",
        cmd_cluster,
        "Group the window's articles into stories (ids stay stable across runs).",
        "aggregator cluster --window all",
        [shared.common, shared.window],
    )


def cmd_summarise(args: argparse.Namespace) -> int:
    from aggregator.cli.output import summary_checks
    from aggregator.pipeline import summarise_stage

    with stage_run(args) as (config, window, storage):
        report = summarise_stage(storage, config.settings, window)
    print(
        f"{report.considered} stories on the page: {report.written} summaries written "
        f"({report.llm} by the LLM, {report.fallbacks} fallbacks), {report.reused} unchanged"
    )
    for line in summary_checks(report):
        print(f"  {line}")
    return EXIT_OK


def add_summarise(sub: Subparsers, shared: Shared) -> None:
    add_command(
        sub,
        "summarise",
        cmd_summarise,
        "Write cited summaries for the page's stories that changed (LLM or extractive).",
        "OPENAI_BASE_URL=http://127.0.0.1:11434/v1 aggregator summarise --window 24",
        [shared.common, shared.window],
    )


def cmd_render(args: argparse.Namespace) -> int:
    from aggregator.pipeline import images_dir, output_dir, render_stage, templates_dir

    with stage_run(args) as (config, window, storage):
        report = render_stage(
            storage,
            config.settings,
            window,
            output_dir(config, args.out),
            templates_dir=templates_dir(config),
            categories=[source.category for source in config.sources if source.enabled],
            images_dir=images_dir(config),
        )
    print(f"{report.stories} stories rendered to {report.path}")
    return EXIT_OK


def add_render(sub: Subparsers, shared: Shared) -> None:
    p = add_command(
        sub,
        "render",
        cmd_render,
        "Render the discover page, story pages and feeds, swapped in atomically.",
        "aggregator render --out /var/www/news",
        [shared.common, shared.window],
    )
    p.add_argument("--out", metavar="DIR", help="site directory (default: output_dir)")


COMMANDS = (add_cluster, add_summarise, add_render)
