"""``flosim report RESULTS_DIR``: one self-contained HTML page (or Markdown) with the tables and figures
of a run, a replay or a sweep (see :mod:`experiments.report`)."""

from __future__ import annotations

import argparse
import json
import sys

from experiments.report import write_report


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="a one-page HTML (or Markdown) report of a results folder")
    p.add_argument("results", metavar="RESULTS_DIR", help="a folder written by flosim run, replay or sweep")
    p.add_argument("--out", help="report file (default: RESULTS_DIR/report.html or report.md)")
    p.add_argument("--format", choices=["html", "md"], default="html", help="html (self-contained, default) or md")
    p.add_argument("--json", action="store_true", help="print the report's path as JSON")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    path = write_report(args.results, args.out, fmt=args.format)
    if args.json:
        json.dump({"report": str(path)}, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(f"report: {path}")
    return 0
