"""``aggregator run`` that SIGKILLs itself at a chosen point of a chosen stage, for crash tests.

    python -m tests.support.killable_run MARKS STAGE DELAY -- run --config ... --db ...

The pipeline's four stages (crawl, cluster, summarise, render) are wrapped: each appends
``<stage> start|end <seconds since start>`` to the file MARKS as it begins and ends, so a test
learns how long each took and which stage a kill hit. When STAGE begins, a timer kills the
process DELAY seconds later; a stage that ends first is killed at its end, right after its
work (commits, the publish) is done, so every kill lands inside the stage it was meant for.
STAGE ``none`` kills nothing: the run completes and its marks time the stages.

Nothing of this is in the package: the kill comes from outside the code under test, as a
power cut or the kernel's OOM killer would.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

STAGES = ("crawl_stage", "cluster_stage", "summarise_stage", "render_stage")


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _wrap(
    name: str, real: Callable[..., Any], marks: str, target: str, delay: float, t0: float
) -> Callable[..., Any]:
    stage = name.removesuffix("_stage")

    def mark(event: str) -> None:
        with open(marks, "a", encoding="utf-8") as out:
            out.write(f"{stage} {event} {time.monotonic() - t0:.3f}\n")
            out.flush()
            os.fsync(out.fileno())

    @functools.wraps(real)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        mark("start")
        if stage == target:
            threading.Timer(delay, _kill).start()
        result = real(*args, **kwargs)
        mark("end")
        if stage == target:
            _kill()
        return result

    return wrapped


def main(argv: list[str]) -> int:
    marks, target, delay = argv[0], argv[1], float(argv[2])
    assert argv[3] == "--", argv
    from aggregator import pipeline
    from aggregator.cli.main import main as cli

    t0 = time.monotonic()
    for name in STAGES:
        setattr(pipeline, name, _wrap(name, getattr(pipeline, name), marks, target, delay, t0))
    return cli(argv[4:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
