"""``flosim negotiate``: any protocol agents from the command line; bad input exits 2."""

from __future__ import annotations

import json

import pytest

from experiments.cli import main
from sim.negotiation.transcript import Transcript


def test_negotiate_flopro_style_pair_reports_an_uncertified_stop(capsys, tmp_path) -> None:
    path = tmp_path / "t.parquet"
    # the pair stops on residuals at round 174 (at max_iter=60, as this test had it, it only ever hit
    # the cap, so the uncertified residual stop was never seen from the command line)
    assert main(["negotiate", "--agents", "experiments.flopro_standins:pair", "--set", "max_iter=400",
                 "--transcript", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["shape"] == [3, 2, 3] and out["agents"] == 2 and out["rounds"] >= 1
    assert out["certified"] is False and out["gap_bound"] is None
    assert out["status"] == "stopped_on_residuals" and out["converged"] is False and out["wall_s"] > 0
    assert "not certified" in out["message"]
    assert Transcript.load(path).n_agents == 2


def pair_of_lp_negotiators():
    """A factory for the test below: the stand-ins' LPs as flosim negotiators (they can certify)."""
    from experiments.flopro_standins import pair
    from sim.negotiation.best_response import LPBestResponse

    return [LPBestResponse(*agent.lp_and_x()) for agent in pair()]


def test_negotiate_certifying_agents(capsys, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parent))
    assert main(["negotiate", "--agents", "test_negotiate_cli:pair_of_lp_negotiators"]) == 0
    text = capsys.readouterr().out
    assert "certified        True" in text and "status           converged" in text


@pytest.mark.parametrize("spec,match", [
    ("nocolon", "expected MODULE:FACTORY"),
    ("no_such_module_xyz:f", "cannot import module"),
    ("experiments.flopro_standins:nothing_here", "has no function"),
    ("os:getcwd", "is not an agent"),
])
def test_bad_agents_exit_2(capsys, spec, match) -> None:
    assert main(["negotiate", "--agents", spec]) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err


def test_bad_option_exits_2(capsys) -> None:
    assert main(["negotiate", "--agents", "experiments.flopro_standins:pair", "--set", "gap_tol=-1"]) == 2
    assert "gap_tol" in capsys.readouterr().err


class _ShapedBadly:
    def __init__(self, shape):
        self.shape = shape

    def best_response(self, z, prices, rho):
        return z


class _FloProStyle:
    def __init__(self, register):
        self.register = register

    def solve(self, *args, **kwargs):
        raise AssertionError("never asked")


def _raise_registry():
    raise KeyError("registry empty")


def shape_text():
    return [_ShapedBadly("abc")]


def shape_negative():
    return [_ShapedBadly((-1, 3))]


def register_list():
    return [_FloProStyle(lambda: [1, 2, 3])]


def register_raises():
    return [_FloProStyle(_raise_registry)]


@pytest.mark.parametrize("factory,match", [
    ("shape_text", "shape = 'abc' is not a plan shape"),
    ("shape_negative", "shape = (-1, 3) is not a plan shape"),
    ("register_list", "register() returned list, not a mapping"),
    ("register_raises", "register() raised KeyError: 'registry empty'"),
])
def test_hostile_agents_exit_2_naming_the_problem(capsys, monkeypatch, factory, match) -> None:
    """An agent's own shape or metadata that cannot place a plan: exit 2 with the agent's name, no
    traceback (these raised ValueError, AttributeError and KeyError out of the command)."""
    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parent))
    assert main(["negotiate", "--agents", f"test_negotiate_cli:{factory}"]) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err
