"""A researcher's own policy, in their own module, runs like a built-in: from the command line with
``--policy module:Class`` and from Python with ``run_policies``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pandas as pd
import pytest
import yaml

from experiments.cli import main
from sim.runner import run_policies
from sim.model.scenario import load_scenario

POLICY_SOURCE = textwrap.dedent(
    '''
    """A user's policies, outside the flosim package."""
    from sim.model.decision import Decision, PlanningContext


    class MyJIT:
        """The retailer's own plan, written from scratch against the public interface."""

        name = "my-jit"

        def decide(self, ctx: PlanningContext) -> Decision:
            own = ctx.retailer.preferred_plan()
            return Decision(plan=own.plan, committed=False, planned={"retailer": own.total},
                            diagnostics={"my_metric": 1.5})


    class HalfJIT:
        """Order a fraction of the retailer's own plan (the README's example)."""

        name = "half-jit"

        def __init__(self, fraction: float = 0.5):
            self.fraction = fraction

        def decide(self, ctx: PlanningContext) -> Decision:
            own = ctx.retailer.preferred_plan()
            return Decision(plan=self.fraction * own.plan, committed=False, diagnostics={"fraction": self.fraction})


    class BadShape:
        name = "bad-shape"

        def decide(self, ctx):
            import numpy as np
            return Decision(plan=np.zeros((1, 1, 1)))
    '''
)


@pytest.fixture
def user_module(tmp_path):
    """A uniquely named module in a fresh folder (nothing cached between tests)."""
    name = f"user_policies_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(POLICY_SOURCE)
    yield name, tmp_path
    sys.modules.pop(name, None)


def _flosim() -> list[str]:
    """The installed console script, as a user calls it (its sys.path does not hold the cwd)."""
    script = shutil.which("flosim") or str(Path(sys.executable).parent / "flosim")
    assert Path(script).exists()
    return [script]


def _run_cli(cmd: list[str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([*cmd, "run", *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.parametrize("how", ["console-script", "python-m"])
def test_cli_runs_a_policy_from_the_working_directory(user_module, how):
    name, folder = user_module
    cmd = _flosim() if how == "console-script" else [sys.executable, "-m", "experiments.cli"]
    r = _run_cli(cmd, folder, "--policy", "jit", "--policy", f"{name}:MyJIT", "--weeks", "2", "--json", "--out", "out")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert list(summary["policies"]) == ["jit", "my-jit"]
    mine, jit = summary["policies"]["my-jit"], summary["policies"]["jit"]
    assert {"social_cost", "retailer_net_cost", "vendor_net_cost", "transfers", "fill_rate"} <= set(mine)
    # the same decisions as the built-in JIT on the same random numbers: the same costs exactly
    for key in ("social_cost", "retailer_net_cost", "vendor_net_cost", "fill_rate"):
        assert mine[key] == jit[key], key
    ledger = pd.read_parquet(folder / "out" / "ledger.parquet")
    a = ledger[ledger.policy == "jit"].drop(columns="policy").reset_index(drop=True)
    b = ledger[ledger.policy == "my-jit"].drop(columns="policy").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    decisions = pd.read_parquet(folder / "out" / "decisions.parquet")
    assert (decisions[decisions.policy == "my-jit"].my_metric == 1.5).all()


def test_python_api_runs_a_user_policy(user_module, monkeypatch, tracer, checks):
    name, folder = user_module
    monkeypatch.syspath_prepend(str(folder))
    s = load_scenario("default").with_overrides({"weeks": 2})
    res = run_policies(s, ["jit", f"{name}:HalfJIT"])
    assert res.policies == ["jit", "half-jit"] and res.error is None
    flows = res.flows.set_index(["policy", "week"])
    # week 0's PO is half of JIT's (later weeks differ: the worlds have diverged)
    assert flows.loc[("half-jit", 0), "po"] == pytest.approx(0.5 * flows.loc[("jit", 0), "po"])
    assert (res.decisions[res.decisions.policy == "half-jit"].fraction == 0.5).all()
    # and the world's invariants hold for it like for any built-in
    import importlib

    policy = importlib.import_module(name).HalfJIT(0.25)
    trace = tracer(s, policy)
    checks.conservation(trace, s)
    checks.money(trace, s)


def test_policy_parameters_keyed_by_module_class(user_module, monkeypatch):
    name, folder = user_module
    monkeypatch.syspath_prepend(str(folder))
    spec = f"{name}:HalfJIT"
    s = load_scenario("default").with_overrides({"weeks": 1}).model_copy(update={"policies": {spec: {"fraction": 0.3}}})
    res = run_policies(s, [spec])
    assert (res.decisions.fraction == 0.3).all()


def test_policy_parameters_keyed_by_name_as_the_readme_says(user_module, monkeypatch, capsys):
    from importlib import resources

    name, folder = user_module
    monkeypatch.syspath_prepend(str(folder))
    data = yaml.safe_load((resources.files("sim") / "scenarios" / "default.yaml").read_text())
    data["policies"]["half-jit"] = {"fraction": 0.3}
    (folder / "s.yaml").write_text(yaml.safe_dump(data))
    out = folder / "o"
    args = ["run", "--scenario", str(folder / "s.yaml"), "--policy", f"{name}:HalfJIT", "--weeks", "1", "--json", "--out", str(out)]
    assert main(args) == 0
    decisions = pd.read_parquet(out / "decisions.parquet")
    assert (decisions[decisions.policy == "half-jit"].fraction == 0.3).all()


def test_a_broken_user_policy_is_reported_not_a_traceback(user_module, monkeypatch, capsys):
    name, folder = user_module
    monkeypatch.syspath_prepend(str(folder))
    out = folder / "o"
    assert main(["run", "--policy", f"{name}:BadShape", "--weeks", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "bad-shape" in err and "shape" in err
    # jit (run first as the reference) finished and was saved
    assert set(pd.read_parquet(out / "ledger.parquet").policy) == {"jit"}


def test_a_class_without_decide_is_rejected(user_module, monkeypatch):
    name, folder = user_module
    (folder / f"{name}_x.py").write_text("class NotAPolicy:\n    name = 'x'\n")
    monkeypatch.syspath_prepend(str(folder))
    from sim.model.errors import FlosimError

    with pytest.raises(FlosimError, match="decide"):
        run_policies(load_scenario("default"), [f"{name}_x:NotAPolicy"], weeks=1)
    sys.modules.pop(f"{name}_x", None)
