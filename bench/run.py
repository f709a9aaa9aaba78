"""Run the benchmarks: ``python bench/run.py [names...]`` (``make bench`` runs them all).

Each ``bench/bench_<name>.py`` module is one benchmark. The run provisions a fresh
database and the servers once (bench/harness.py), runs the selected benchmarks in name
order, prints one table and writes ``bench/results/<name>.json`` per benchmark.

Exit status: 0 all good; 1 a benchmark failed; 2 bad arguments; 3 PostgreSQL or Redis
unreachable (the message names which); 4 the work tree has uncommitted changes (results
must name the commit they measured: commit first, or pass ``--allow-dirty``, which the
results record).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import time
import traceback
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/run.py` puts bench/, not the repo, on the path
    sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    BenchContext,
    BenchError,
    Options,
    check_services,
    check_tree,
    commit_info,
    format_table,
    write_result,
)


def discover() -> dict[str, ModuleType]:
    """``{name: module}`` for every ``bench/bench_<name>.py``."""
    modules: dict[str, ModuleType] = {}
    for path in sorted((ROOT / "bench").glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        modules[name] = importlib.import_module(f"bench.{path.stem}")
    return modules


def parse_args(argv: list[str] | None, names: list[str]) -> argparse.Namespace:
    defaults = Options()
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Benchmarks against real PostgreSQL/Redis, beside raw baselines.",
    )
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {names})")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--workers", type=int, default=defaults.workers, help="uvicorn workers")
    parser.add_argument(
        "--concurrency", type=int, default=defaults.concurrency, help="closed-loop clients"
    )
    parser.add_argument(
        "--duration", type=float, default=defaults.duration, help="measured seconds per run"
    )
    parser.add_argument(
        "--warmup", type=float, default=defaults.warmup, help="unmeasured seconds per run"
    )
    parser.add_argument(
        "--client", choices=("raw", "httpx"), default=defaults.client, help="load client"
    )
    parser.add_argument(
        "--keep-db",
        action="store_true",
        help="keep the bench database afterwards (for bench/profile_request.py)",
    )
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="measure a work tree with uncommitted changes (recorded as dirty in the results)",
    )
    parser.add_argument(
        "--no-write", action="store_true", help="print the table only, write no results"
    )
    return parser.parse_args(argv)


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C so the context still stops servers and drops the database.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    modules = discover()
    args = parse_args(argv, list(modules))
    if args.list:
        for name, module in modules.items():
            print(f"{name:<16} {(module.__doc__ or '').strip().splitlines()[0]}")
        return 0
    unknown = [name for name in args.names if name not in modules]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(modules)}")
        return 2
    selected = args.names or list(modules)

    options = Options.from_env(
        workers=args.workers,
        concurrency=args.concurrency,
        duration=args.duration,
        warmup=args.warmup,
        client=args.client,
        keep_db=args.keep_db,
        allow_dirty=args.allow_dirty,
    )
    try:
        options.validate()
    except BenchError as exc:
        print(f"bench: {exc}")
        return 2
    try:
        check_tree(commit_info(), allow_dirty=options.allow_dirty)
    except BenchError as exc:
        print(f"bench: {exc}")
        return 4
    problems = check_services(options)
    if problems:
        for service, problem in problems.items():
            print(f"bench: {service} is unreachable: {problem}")
        print("bench: start the services (or set BENCH_POSTGRES_URL / BENCH_REDIS_URL)")
        return 3

    signal.signal(signal.SIGTERM, _terminate)
    results: list[dict[str, Any]] = []
    failed: list[str] = []
    started = time.perf_counter()
    print(
        f"bench: {', '.join(selected)}  ({options.workers} workers, "
        f"{options.concurrency} clients, {options.warmup:g}+{options.duration:g}s per run)"
    )
    try:
        with BenchContext(options) as ctx:
            for name in selected:
                print(f"== {name}")
                ctx.begin(name)
                try:
                    figures = modules[name].run(ctx)
                except BenchError as exc:
                    print(f"bench: {name} failed: {exc}")
                    failed.append(name)
                    continue
                except Exception:
                    traceback.print_exc()
                    failed.append(name)
                    continue
                result = ctx.result(figures)
                results.append(result)
                if not args.no_write:
                    print(f"  wrote {write_result(result).relative_to(ROOT)}")
    except BenchError as exc:
        print(f"bench: setup failed: {exc}")
        return 1

    if results:
        print()
        print(format_table(results))
    print(f"\nbench: done in {time.perf_counter() - started:.0f}s")
    if failed:
        print(f"bench: FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
