"""Argument types shared by several ``flosim`` commands (a private module: not a command)."""

from __future__ import annotations

import argparse
from typing import Any

import yaml


def name_value(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` (or ``PATH=VALUE``) with the value read as YAML (numbers, booleans, lists).
    YAML 1.1 reads ``1e-3`` (no dot) as a string; a string that is a number is taken as the number."""
    path, sep, value = text.partition("=")
    if not sep or not path.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (e.g. demand.cv=0.4), got {text!r}")
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        raise argparse.ArgumentTypeError(f"{path.strip()}: cannot read the value {value!r}") from None
    if isinstance(parsed, str):
        try:
            parsed = float(parsed)
        except ValueError:
            pass
    return path.strip(), parsed
