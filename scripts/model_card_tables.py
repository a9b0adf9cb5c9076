#!/usr/bin/env python3
"""Print the model card's PSNR and SSIM tables from a ``pconv evaluate`` report.

    python scripts/model_card_tables.py runs/final-eval/report.json [--label "pconv=TEXT"] \\
        [--models pconv,pconv-flips4]

Every pconv model in the report (``pconv``, ``pconv-flips4``, checkpoints), or those that
``--models`` names, is a column, then the classical methods; the last columns are each model
minus the best classical method. The best value of a row is bold.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

CLASSICAL = ("telea", "ns", "biharmonic", "mean")
METRICS = {"psnr": ("PSNR (dB)", 2, 2), "ssim": ("SSIM", 4, 3)}  # title, digits, digits of gaps


def score(method: dict, row: str, metric: str) -> float:
    return (method["overall"] if row == "overall" else method["bands"][row])[metric]


def table(report: dict, metric: str, labels: dict[str, str], only: list[str]) -> str:
    title, digits, gap_digits = METRICS[metric]
    methods = report["methods"]
    models = [m for m in methods if m not in CLASSICAL and (not only or m in only)]
    if missing := [m for m in only if m not in methods]:
        raise SystemExit(f"not in the report: {', '.join(missing)}")
    classical = [m for m in CLASSICAL if m in methods]
    if not classical:
        raise SystemExit("the report has no classical method to compare with")
    rows = [*next(iter(methods.values()))["bands"], "overall"]
    head = [labels.get(m, m) for m in models] + classical
    gaps = [f"{labels.get(m, m)} − best classical" for m in models]
    lines = [f"{title}:", "", "| band | " + " | ".join(head + gaps) + " |",
             "|---|" + "---:|" * (len(head) + len(gaps))]
    for row in rows:
        values = {name: score(methods[name], row, metric) for name in models + classical}
        best = max(values.values())
        best_classical = max(values[c] for c in classical)
        cells = [f"**{v:.{digits}f}**" if v == best else f"{v:.{digits}f}"
                 for v in values.values()]
        cells += [f"{values[m] - best_classical:+.{gap_digits}f}".replace("-", "−")
                  for m in models]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--label", action="append", default=[], metavar="NAME=TEXT",
                        help="column heading for a method, e.g. 'pconv=pconv (20,000 steps)'")
    parser.add_argument("--models", default="", help="comma list of the model columns to show")
    args = parser.parse_args()
    labels = dict(item.split("=", 1) for item in args.label)
    only = [m for m in args.models.split(",") if m]
    report = json.loads(args.report.read_text())
    sys.stdout.write(table(report, "psnr", labels, only) + "\n\n"
                     + table(report, "ssim", labels, only) + "\n")


if __name__ == "__main__":
    main()
