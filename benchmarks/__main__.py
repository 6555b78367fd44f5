"""`python -m benchmarks [NAME ...]`: run all benchmarks, or the named ones, and print one table."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import platform
import sys
from types import ModuleType

import benchmarks
from benchmarks.measure import Row
from benchmarks.table import render

_NOT_BENCHMARKS = frozenset({"measure", "table"})


def discover() -> dict[str, ModuleType]:
    """Every module in this package that defines `run(args)`, by name."""
    found = {}
    for info in sorted(pkgutil.iter_modules(benchmarks.__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.name in _NOT_BENCHMARKS:
            continue
        module = importlib.import_module(f"benchmarks.{info.name}")
        if callable(getattr(module, "run", None)):
            found[info.name.replace("_", "-")] = module
    return found


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in _read_lines("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def _read_lines(path: str) -> list[str]:
    try:
        with open(path) as file:
            return file.readlines()
    except OSError:
        return []


def main(argv: list[str] | None = None) -> int:
    found = discover()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run (default: all): {', '.join(found)}")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per comparison; the best counts (default: %(default)s)")
    for module in found.values():
        if hasattr(module, "add_arguments"):
            module.add_arguments(parser)
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in found]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(found)}")
    print(f"Machine: {machine()}", flush=True)
    rows: list[Row] = []
    for name in args.names or list(found):
        print(f"running {name} ...", file=sys.stderr, flush=True)
        for row in found[name].run(args):
            print("  " + render([row]).splitlines()[-1], file=sys.stderr, flush=True)
            rows.append(row)
    print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
