"""Benchmark harness: runs every bench/bench_*.py module's `main()` and prints its ratios.

Each benchmark measures selfmart's path and a baseline for the same rows in the same run,
and prints `name: rate (baseline rate, ratio)`. Nothing here asserts a time.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
from pathlib import Path


def main() -> int:
    here = Path(__file__).parent
    sys.path.insert(0, str(here.parent))
    modules = sorted(p.stem for p in here.glob("bench_*.py"))
    if not modules:
        print("bench: no benchmarks yet (bench/bench_*.py)")
        return 0
    for name in modules:
        mod = importlib.import_module(f"bench.{name}")
        print(f"== {name}")
        result = mod.main()
        if inspect.isawaitable(result):
            asyncio.run(result)  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
