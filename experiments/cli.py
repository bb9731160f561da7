"""The ``flosim`` command line.

Each subcommand lives in its own module under :mod:`experiments.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed arguments,
returning an exit status). Modules are discovered automatically, so a new command is a new file.

User errors (:class:`sim.model.errors.FlosimError`) print one message on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from sim.model.errors import FlosimError

import experiments.commands as _commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flosim",
        description="Simulate retailer-vendor coordination mechanisms (JIT, CPP, CPP-VCG, menu of contracts).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except FlosimError as exc:
        print(f"flosim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("flosim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`flosim plan | head`): stop quietly, as Unix tools do; results the
        # command wrote to files are already there
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    return int(status or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
