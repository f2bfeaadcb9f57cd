"""Run every benchmark module and print its figures."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> int:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    only = set(sys.argv[1:])
    for name in names:
        if only and name.removeprefix("bench_") not in only and name not in only:
            continue
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== {name.removeprefix('bench_')}")
        module.run()
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
