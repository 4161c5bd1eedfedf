#!/usr/bin/env python3
"""Checks criterion's latest results against the latency budgets.

Reads benches/budgets.toml, then for each budget the median point estimate
of criterion's latest run of its benchmark, from
<target>/criterion/<benchmark id>/new/estimates.json, where <target> is
$CARGO_TARGET_DIR if set (relative to the current directory, as cargo reads
it), else the workspace's target/; a budget with `minus = "<id>"` bounds
the difference of the two medians (what one bench adds to the other). Prints
one row per budget (target, measured median, ratio, verdict) and exits 1 when
any budget is over or has no measurement, 0 when all are met. Python 3
standard library only.

    python3 scripts/bench_check.py              # the budgets
    python3 scripts/bench_check.py --all        # and every other bench found
    python3 scripts/bench_check.py --markdown   # as a Markdown table
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_budgets(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    try:
        import tomllib  # Python 3.11+
    except ModuleNotFoundError:
        budgets = parse_budget_tables(text)
    else:
        budgets = tomllib.loads(text).get("budget", [])
    for budget in budgets:
        for key in ("name", "bench", "max_ns"):
            if key not in budget:
                raise SystemExit(f"{path}: a [[budget]] lacks '{key}': {budget}")
    return budgets


def parse_budget_tables(text: str) -> list[dict]:
    """The subset of TOML budgets.toml uses: [[budget]] tables of
    `key = "string"` and `key = number` lines, and comments."""
    budgets: list[dict] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line == "[[budget]]":
            budgets.append({})
            continue
        key, sep, value = line.partition("=")
        if not sep or not budgets:
            raise SystemExit(f"budgets.toml:{number}: cannot read {raw!r}")
        key, value = key.strip(), value.strip()
        if value.startswith('"'):
            budgets[-1][key] = json.loads(value[: value.rindex('"') + 1])
        else:
            value = value.split("#", 1)[0].strip().replace("_", "")
            budgets[-1][key] = float(value) if "." in value else int(value)
    return budgets


def criterion_dir(override: str | None) -> Path:
    if override:
        return Path(override)
    target = os.environ.get("CARGO_TARGET_DIR")
    return (Path(target) if target else ROOT / "target") / "criterion"


def median_ns(base: Path, bench: str) -> float | None:
    """Criterion's median estimate for `bench`, in ns per iteration."""
    path = base.joinpath(*bench.split("/"), "new", "estimates.json")
    try:
        estimates = json.loads(path.read_text(encoding="utf-8"))
        value = float(estimates["median"]["point_estimate"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if math.isfinite(value) else None


def all_benches(base: Path) -> list[str]:
    """Every benchmark id with a latest run under `base`."""
    found = []
    for estimates in base.rglob("new/estimates.json"):
        found.append(estimates.parent.parent.relative_to(base).as_posix())
    return sorted(found)


def human(ns: float | None) -> str:
    if ns is None:
        return "—"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if abs(ns) >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def render(rows: list[list[str]], header: list[str], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*row) for row in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", type=Path, default=ROOT / "benches" / "budgets.toml")
    parser.add_argument("--criterion-dir", help="criterion's output folder (default: <target>/criterion)")
    parser.add_argument("--all", action="store_true", help="also list every other bench found")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    args = parser.parse_args()

    base = criterion_dir(args.criterion_dir)
    budgets = load_budgets(args.budgets)
    rows, failures = [], 0
    for budget in budgets:
        target = float(budget["max_ns"])
        measured = median_ns(base, budget["bench"])
        # A budget with `minus` bounds what its bench adds to another:
        # the difference of the two medians of the same run.
        if measured is not None and "minus" in budget:
            other = median_ns(base, budget["minus"])
            measured = None if other is None else measured - other
        if measured is None:
            ratio, verdict = "—", "MISSING"
        else:
            ratio = f"{measured / target:.2f}"
            verdict = "met" if measured <= target else "OVER"
        failures += verdict != "met"
        bench = budget["bench"] + (f" - {budget['minus']}" if "minus" in budget else "")
        bench = f"`{bench}`" if args.markdown else bench
        rows.append([budget["name"], bench, "≤ " + human(target), human(measured), ratio, verdict])

    print(f"criterion results: {base}")
    print(render(rows, ["budget", "bench", "target", "median", "ratio", "verdict"], args.markdown))

    if args.all:
        budgeted = {budget["bench"] for budget in budgets if "minus" not in budget}
        others = [
            [f"`{bench}`" if args.markdown else bench, human(median_ns(base, bench))]
            for bench in all_benches(base)
            if bench not in budgeted
        ]
        print()
        print(render(others, ["other bench", "median"], args.markdown))

    met = len(budgets) - failures
    print(f"\n{met} of {len(budgets)} budgets met", end="")
    print(f"; {failures} over or missing" if failures else "")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
