"""Argument types shared by several ``flosim`` commands (a private module: not a command)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from sim.model.errors import FlosimError
from sim.model.validation import load_yaml_text


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


def week_index(option: str) -> Callable[[str], int]:
    """An argparse type for one planning week (``flosim plan --week``): a whole number >= 0. Week
    arguments are indices (0 is the first simulated week) for ``--week``, counts for ``--weeks``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} must be a whole number (a week index, 0 = the first week), got {text!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"{option} must be >= 0 (0 = the first week), got {value}")
        return value

    return parse


def check_week(week: int, scenario: Any, option: str = "--week") -> None:
    """Refuse a week index at or beyond the scenario's simulated weeks (``weeks: 8`` has weeks 0 to 7)."""
    from sim.model.errors import FlosimError

    if week >= scenario.weeks:
        raise FlosimError(f"{option} {week}: scenario '{scenario.name}' simulates {scenario.weeks} weeks "
                          f"(weeks 0 to {scenario.weeks - 1}); give a smaller week or set the scenario's weeks")
