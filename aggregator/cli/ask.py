"""``ask``: a question about one story, answered from its articles with citations."""

from __future__ import annotations

import argparse
import json

from aggregator.cli.common import (
    EXIT_OK,
    Shared,
    Subparsers,
    add_command,
    config_from,
    open_database,
)


def cmd_ask(args: argparse.Namespace) -> int:
    from aggregator.summarise.ask import ask

    config = config_from(args)
    with open_database(args, config) as storage:
        answer = ask(storage, args.story_id, args.question, config.settings)
    if args.json:
        print(json.dumps(answer.json(), ensure_ascii=False, indent=2))
        return EXIT_OK
    print(answer.text())
    if answer.cited:
        print("\nSources:")
        for source in answer.cited:
            print(f"  [{source.number}] {source.outlet}: {source.title} {source.url}")
    if answer.method == "llm":
        method = f"answered by the LLM ({answer.model})"
    elif config.settings.llm.configured:
        method = "answered extractively (term overlap), the LLM did not answer"
    else:
        method = "answered extractively (term overlap; no LLM configured)"
    print(f"\n{method}" + (f"; {answer.note}" if answer.note else ""))
    return EXIT_OK


def add_ask(sub: Subparsers, shared: Shared) -> None:
    p = add_command(
        sub,
        "ask",
        cmd_ask,
        "Answer a question from one story's articles only, every sentence cited; says plainly "
        "when the articles do not answer it.",
        'aggregator ask 3f2a9c0d1e "How many people were injured?"\n'
        "aggregator export stories | jq -r '.id + \"  \" + .title'   # the story ids\n"
        'aggregator ask 3f2a9c0d1e "Who is affected?" --json',
        [shared.common],
    )
    p.add_argument("story_id", metavar="STORY_ID", help="the story (export stories lists ids)")
    p.add_argument("question", metavar="QUESTION", help="the question, in quotes")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")


COMMANDS = (add_ask,)
