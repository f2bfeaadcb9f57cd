"""``serve``: the built site on 127.0.0.1 for preview, with a rebuild button and, with an LLM
configured, the story pages' "Ask about this story" form."""

from __future__ import annotations

import argparse
import contextlib

from aggregator.cli.common import (
    EXIT_OK,
    Shared,
    Subparsers,
    add_command,
    config_from,
    open_database,
)


def cmd_serve(args: argparse.Namespace) -> int:
    from aggregator.pipeline import output_dir, run_once
    from aggregator.render.preview import Preview, serve
    from aggregator.summarise.ask import Answer, ask
    from aggregator.times import utcnow

    config = config_from(args)
    site = output_dir(config, args.out)
    with open_database(args, config) as storage:

        def rebuild() -> str:
            report = run_once(config, storage, now=utcnow(), out_dir=site, do_crawl=False)
            return f"rebuilt: {report.render.stories} stories -> {report.render.path}"

        def answer(story_id: str, question: str) -> Answer:
            return ask(storage, story_id, question, config.settings)

        preview = Preview(
            site,
            rebuild=rebuild,
            ask=answer if config.settings.llm.configured else None,
            language=config.settings.language,
        )
        if not (site / "index.html").is_file():
            print(f"{site} has no site yet: press Rebuild on the page, or run `aggregator run`")

        def ready(url: str) -> None:
            print(f"Previewing {site} at {url} (127.0.0.1 only; Ctrl-C stops)", flush=True)

        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a preview ends
            serve(preview, args.port, ready=ready)
    return EXIT_OK


def add_serve(sub: Subparsers, shared: Shared) -> None:
    p = add_command(
        sub,
        "serve",
        cmd_serve,
        "Preview the built site on 127.0.0.1: a Rebuild button re-runs the digest (no crawl) and, "
        "with an LLM configured, story pages get an 'Ask about this story' form. The published "
        "site itself stays static.",
        "aggregator serve                 # http://127.0.0.1:8000/\n"
        "aggregator serve --port 8080 --config sources.yaml",
        [shared.common],
    )
    p.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000)")
    p.add_argument("--out", metavar="DIR", help="site directory (default: output_dir)")


COMMANDS = (add_serve,)
