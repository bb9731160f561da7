"""Argument types shared by several ``flosim`` commands (a private module: not a command)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from sim.errors import FlosimError
from sim.validation import load_yaml_text


def name_value(label: str = "NAME=VALUE", example: str = "eps_rel=3e-3") -> Callable[[str], tuple[str, Any]]:
    """An argparse type for ``NAME=VALUE`` (``label``), the value read as YAML (numbers, booleans,
    lists; note YAML 1.1 reads ``1e-3`` as a string, which the settings' own validation converts)."""

    def parse(text: str) -> tuple[str, Any]:
        path, sep, value = text.partition("=")
        if not sep or not path.strip():
            raise argparse.ArgumentTypeError(f"expected {label} (e.g. {example}), got {text!r}")
        try:
            return path.strip(), load_yaml_text(value, path.strip())
        except FlosimError:
            raise argparse.ArgumentTypeError(f"{path.strip()}: cannot read the value {value!r}") from None

    return parse
