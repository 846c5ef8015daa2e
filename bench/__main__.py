"""`python -m bench [--scenario NAME ...]`: run the benchmarks, print a table, write results."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import SCENARIOS, Stores, run_one, say, table, write_results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make bench",
        description="Run steamwatch's benchmarks against real PostgreSQL, Redis, dramatiq "
        "workers and the simulator. Uses STEAMWATCH_DATABASE_URL / STEAMWATCH_REDIS_URL when "
        "set (a fresh database per scenario), embedded servers otherwise.",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIOS,
        help="run only this scenario (repeatable); default: all",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("bench/results.json"),
        help="results file; a partial run replaces only its scenarios",
    )
    args = parser.parse_args(argv)
    names = args.scenario or SCENARIOS
    results = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="steamwatch-bench-") as tmp:
        folder = Path(tmp)
        with Stores.open(folder) as stores:
            for name in names:
                results.append(run_one(stores, name, folder))
            write_results(args.output, results)
    say(f"all done in {time.monotonic() - started:.0f}s; results in {args.output}")
    print(table(results))
    missed = [
        f"{r['scenario']}.{figure}"
        for r in results
        for figure, target in r["targets"].items()
        if not target["met"]
    ]
    if missed:
        print(f"targets missed: {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
