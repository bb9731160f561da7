"""Damaged files and hostile input, as a new user meets them: scenarios, specs, traces, results
folders, command-line flags and user policies. Every case must end with one message on stderr naming
the problem, exit status 2 and no traceback; nothing is simulated and no results folder is left.
The cases run in-process (an uncaught exception fails the test), so the module stays fast."""

from __future__ import annotations

import copy
import json
import os
import shutil
import textwrap
import time
import uuid
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from experiments.cli import main

DEFAULT = yaml.safe_load((resources.files("sim") / "scenarios" / "default.yaml").read_text())
DEFAULT_TEXT = (resources.files("sim") / "scenarios" / "default.yaml").read_text()
TWO_VENDORS = yaml.safe_load((resources.files("sim") / "scenarios" / "two-vendors.yaml").read_text())


def _refused(capsys, argv: list[str], *needles: str, out: Path | None = None) -> str:
    """Run ``flosim argv``; it must refuse with one clear message (argparse's own usage + one error
    line counts as one message). Returns stderr."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage and one error line
        code = exc.code
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, (code, err, captured.out[-500:])
    assert "Traceback" not in err and "Traceback" not in captured.out
    assert err.count("error:") == 1, err
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"
    if out is not None:
        assert not out.exists() or not any(out.iterdir()), "a refused command left results behind"
    return err


def _scenario_file(tmp_path: Path, change: Callable[[dict[str, Any]], None], name: str = "s.yaml",
                   base: dict[str, Any] = DEFAULT) -> Path:
    data = copy.deepcopy(base)
    change(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _run_refused(capsys, tmp_path: Path, scenario: Path | str, *needles: str, extra: tuple[str, ...] = ()) -> str:
    out = tmp_path / "results"
    return _refused(capsys, ["run", "--scenario", str(scenario), "--policy", "jit", "--weeks", "1", "--out", str(out), *extra],
                    *needles, out=out)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        node: Any = d
        parts = path.split(".")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        last = parts[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


# -- numbers that are not numbers: every numeric field x {inf, -inf, nan, true, text} ----------------
NUMERIC_FIELDS = [
    "products.0.wholesale_price", "products.1.holding_cost", "products.2.lost_sales_penalty", "products.0.volume",
    "products.1.base_demand", "fcs.0.receiving_cost", "fcs.1.lead_time", "origins.0.capacity",
    "origins.1.production_cost", "origins.2.holding_cost", "lanes.0.spare_volume", "lanes.0.spare_cost",
    "lanes.1.truckload_cost", "demand.cv", "demand.trend", "terminal_value", "weeks", "horizon", "seed",
    "outbound_cost.DAL.SouthWest",
]
BAD_NUMBERS = [(float("inf"), "inf"), (float("nan"), "nan"), (True, "True"), ("lots", "lots")]
NUMBER_CASES = [pytest.param(f, v, shown, id=f"{f}={shown}") for f in NUMERIC_FIELDS for v, shown in BAD_NUMBERS]


@pytest.mark.parametrize("field, value, shown", NUMBER_CASES)
def test_numbers_that_are_not_numbers(capsys, tmp_path, field, value, shown):
    path = _scenario_file(tmp_path, _set(field, value))
    err = _run_refused(capsys, tmp_path, path, str(path), field, shown)
    assert len(err.strip().splitlines()) == 1, err


# the same in a several-vendor (schema version 2) file: each vendor's prices, origins and lanes
V2_NUMERIC_FIELDS = [
    "vendors.1.products.detergent", "vendors.0.origins.0.capacity", "vendors.1.origins.0.production_cost.sunscreen",
    "vendors.0.origins.1.production_cost", "vendors.1.origins.0.initial_stock.detergent", "vendors.1.lanes.0.spare_volume",
    "vendors.0.lanes.2.truckload_cost",
]
V2_NUMBER_CASES = [pytest.param(f, v, shown, id=f"{f}={shown}") for f in V2_NUMERIC_FIELDS for v, shown in BAD_NUMBERS]


@pytest.mark.parametrize("field, value, shown", V2_NUMBER_CASES)
def test_numbers_that_are_not_numbers_in_a_several_vendor_file(capsys, tmp_path, field, value, shown):
    path = _scenario_file(tmp_path, _set(field, value), base=TWO_VENDORS)
    err = _run_refused(capsys, tmp_path, path, str(path), field, shown)
    assert len(err.strip().splitlines()) == 1, err


def test_a_vendor_price_for_every_product_must_be_a_number(capsys, tmp_path):
    def change(d: dict[str, Any]) -> None:
        d["vendors"][0].update(products="all", wholesale_price=float("nan"))
    path = _scenario_file(tmp_path, change, base=TWO_VENDORS)
    _run_refused(capsys, tmp_path, path, str(path), "vendors.0.wholesale_price", "nan")


@pytest.mark.parametrize("field, value", [("products.0.wholesale_price", float("-inf")), ("demand.trend", float("-inf")),
                                          ("fcs.2.receiving_capacity", float("inf")), ("fcs.0.initial_stock.razors", float("nan")),
                                          ("demand.multipliers", [1.0, float("inf")]), ("lanes.2.delay.values", [0, True]),
                                          ("demand.revision.shares", [1, 1, 1, 1, 1, float("nan")])])
def test_more_non_finite_and_boolean_numbers(capsys, tmp_path, field, value):
    path = _scenario_file(tmp_path, _set(field, value))
    _run_refused(capsys, tmp_path, path, str(path), field)


# -- hostile YAML ------------------------------------------------------------------------------------
def _bomb(levels: int, indent: str = "    ") -> str:
    lines = [f"{indent}l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"{indent}l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("where", ["unused_policy", "used_policy", "top", "description", "products"])
@pytest.mark.parametrize("levels", [7, 9])
def test_alias_bombs_are_refused_at_once(capsys, tmp_path, where, levels):
    if where == "unused_policy":
        text = DEFAULT_TEXT.replace("policies:\n", "policies:\n  never-run:\n" + _bomb(levels), 1)
    elif where == "used_policy":
        text = DEFAULT_TEXT.replace("policies:\n", "policies:\n  cpp:\n" + _bomb(levels), 1).replace("  cpp: {}\n", "")
    elif where == "top":
        text = DEFAULT_TEXT + "bomb:\n" + _bomb(levels, "  ")
    elif where == "description":
        text = "anchors:\n" + _bomb(levels, "  ") + DEFAULT_TEXT.replace("description:", f"description: *l{levels - 1}\nold_description:")
    else:
        text = "anchors:\n" + _bomb(levels, "  ") + DEFAULT_TEXT.replace("products:\n", f"products: *l{levels - 1}\nold_products:\n", 1)
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    started = time.perf_counter()
    _run_refused(capsys, tmp_path, path, str(path), "not valid YAML")
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("text, needle", [
    (DEFAULT_TEXT + "\nweeks: 5\n", "duplicate key 'weeks'"),
    (DEFAULT_TEXT.replace("{detergent: 320,", "{detergent: 320, detergent: 5,", 1), "duplicate key 'detergent'"),
    (DEFAULT_TEXT + "\npolicies: {}\n", "duplicate key 'policies'"),
    ("[" * 1000 + "]" * 1000 + "\n", "nested"),
    ("a: &a [1]\nb: *nowhere\n", "not valid YAML"),
    ("!!python/object/apply:os.system ['echo hacked']\n", "not valid YAML"),
    ("name: x\n\tweeks: 2\n", "not valid YAML"),
    ("--- \nname: a\n--- \nname: b\n", "not valid YAML"),
], ids=["dup_top", "dup_nested", "dup_policies", "deep", "unknown_alias", "python_tag", "tab", "two_documents"])
def test_malformed_yaml_documents(capsys, tmp_path, text, needle):
    path = tmp_path / "odd.yaml"
    path.write_text(text)
    _run_refused(capsys, tmp_path, path, str(path), needle)


def test_a_huge_file_is_refused_before_it_is_read(capsys, tmp_path):
    path = tmp_path / "huge.yaml"
    with path.open("wb") as fh:
        fh.truncate(25_000_000)  # sparse: no time spent writing it
    _run_refused(capsys, tmp_path, path, str(path), "bytes")


# -- sizes checked against memory ----------------------------------------------------------------------
@pytest.mark.parametrize("change, field", [
    (_set("weeks", 10**9), "weeks"),
    (_set("horizon", 10**5), "horizon"),
    (lambda d: (d.pop("products"), d["fcs"][0].update(initial_stock={}), d["fcs"][1].update(initial_stock={}),
                d["fcs"][2].update(initial_stock={}), [o.update(initial_stock={}, production_cost=2.0) for o in d["origins"]],
                d.update(product_generator={"count": 10**8})), "product_generator.count"),
], ids=["weeks", "horizon", "products"])
def test_runs_too_big_for_memory_are_refused_at_load(capsys, tmp_path, change, field):
    path = _scenario_file(tmp_path, change)
    started = time.perf_counter()
    _run_refused(capsys, tmp_path, path, str(path), f"'{field}'", "memory")
    assert time.perf_counter() - started < 5


def test_a_weeks_flag_too_big_for_memory(capsys, tmp_path):
    out = tmp_path / "r"
    _refused(capsys, ["run", "--policy", "jit", "--weeks", "1000000000", "--out", str(out)], "weeks", "memory", out=out)


# -- scenarios that make no sense ----------------------------------------------------------------------
def test_all_zero_regional_weights_are_refused(capsys, tmp_path):
    path = _scenario_file(tmp_path, lambda d: d["demand"].update(region_weights={r: 0 for r in d["regions"]}))
    _run_refused(capsys, tmp_path, path, "demand.region_weights", "no region has a positive weight")


def test_a_region_no_fc_serves_is_warned_on_stderr_and_in_the_summary(capsys, tmp_path):
    def unserve(d):
        for row in d["outbound_cost"].values():
            row.pop("SouthCentral", None)

    path = _scenario_file(tmp_path, unserve)
    out = tmp_path / "r"
    assert main(["run", "--scenario", str(path), "--policy", "jit", "--weeks", "1", "--json", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "flosim: warning:" in captured.err and "SouthCentral" in captured.err
    summary = json.loads(captured.out)
    assert any("SouthCentral" in w for w in summary["warnings"])
    assert json.loads((out / "summary.json").read_text())["warnings"] == summary["warnings"]
    # and a scenario every region of which is served has no warnings key at all
    assert main(["run", "--policy", "jit", "--weeks", "1", "--json", "--out", str(tmp_path / "r2")]) == 0
    assert "warnings" not in json.loads(capsys.readouterr().out)


# -- built-in policies' parameters, checked at load ----------------------------------------------------
POLICY_PARAM_CASES = [
    ("cpp-vcg", {"discont": 0.9}, "discont"),
    ("cpp-vcg", {"scenarios": True}, "scenarios"),
    ("cpp-vcg", {"discount": float("nan")}, "discount"),
    ("cpp-vcg", {"discount": 2.0}, "discount"),
    ("cpp-vcg", {"solver": "magic"}, "solver"),
    ("cpp-vcg", {"two_way": "yes please"}, "two_way"),
    ("cpp-vcg", {"cpp": {"eps_rell": 1}}, "eps_rell"),
    ("cpp-vcg", [1, 2], "dictionary"),
    ("cpp", {"max_iter": float("inf")}, "max_iter"),
    ("cpp", {"fallback": "pray"}, "fallback"),
    ("cpp", {"answers": {"exact_blow": 0}}, "exact_blow"),
    ("menu", {"size": 0}, "size"),
    ("menu", {"size": True}, "size"),
    ("menu", {"sise": 3}, "sise"),
    ("menu", {"method": "guess"}, "method"),
    ("jit", {"aggressive": True}, "aggressive"),
    ("first-best", {"speed": 2}, "speed"),
    ("split-savings", {"share": 1.5}, "share"),
    ("split-savings", {"share": 2.5e-1, "solver": "psychic"}, "solver"),
    # a count written as a decimal passed the load check and failed at the first week ("'float' object
    # cannot be interpreted as an integer")
    ("cpp-vcg", {"scenarios": 4.0}, "'scenarios' = 4.0"),
    ("menu", {"size": 4.0}, "'size' = 4.0"),
    # the non-finite number itself is shown, not the whole mapping around it
    ("cpp-vcg", {"cpp": {"rho": float("inf"), "max_iter": 5}}, "'cpp.rho' = inf"),
    # privacy's own model checks it: a non-finite sensitivity is refused there
    ("cpp-vcg", {"privacy": {"sensitivity": float("inf")}}, "sensitivity"),
]


@pytest.mark.parametrize("policy, params, needle", POLICY_PARAM_CASES, ids=[f"{p}-{n}" for p, _, n in POLICY_PARAM_CASES])
def test_policy_parameters_are_checked_at_load(capsys, tmp_path, policy, params, needle):
    path = _scenario_file(tmp_path, lambda d: d["policies"].update({policy: params}))
    # the run asks only for jit: the parameters of a policy that is not run are refused all the same
    _run_refused(capsys, tmp_path, path, str(path), f"policies.{policy}", needle)


@pytest.mark.parametrize("policy", ["cpp", "cpp-vcg"])
def test_privacy_eps_inf_is_accepted_at_load(tmp_path, policy):
    """``privacy: {eps: .inf}`` is the documented default (exact answers, docs/privacy.md); the load-time
    check of non-finite policy parameters refused it."""
    from sim.model.scenario import load_scenario

    path = _scenario_file(tmp_path, lambda d: d["policies"].update({policy: {**d["policies"].get(policy, {}),
                                                                               "privacy": {"eps": float("inf")}}}))
    assert ".inf" in path.read_text()
    scenario = load_scenario(path)
    assert scenario.policies[policy]["privacy"]["eps"] == float("inf")


# -- user policies ---------------------------------------------------------------------------------------
USER_MODULES = {
    "syntax": ("def broken(:\n", "not valid Python"),
    "raises": ("raise RuntimeError('no licence server')\n", "no licence server"),
    "ctor": ("class P:\n    name = 'p'\n    def __init__(self):\n        raise ValueError('bad mood')\n"
             "    def decide(self, ctx):\n        pass\n", "bad mood"),
    "builtin_name": ("class P:\n    name = 'jit'\n    def decide(self, ctx):\n        pass\n", "built-in"),
    "no_decide": ("class P:\n    name = 'p'\n", "decide"),
    "no_name": ("class P:\n    def decide(self, ctx):\n        pass\n", "name"),
    "number_name": ("class P:\n    name = 7\n    def decide(self, ctx):\n        pass\n", "name"),
    "missing_class": ("class Q:\n    pass\n", "no attribute"),
    "not_a_class": ("P = 3\n", "not a class"),
    "import_error": ("import no_such_dependency_xyz\nclass P:\n    pass\n", "no_such_dependency_xyz"),
    "exit": ("import sys\nsys.exit(3)\n", "SystemExit"),
    # found in review: a RuntimeError traceback
    "name_raises": ("class P:\n    @property\n    def name(self):\n        raise RuntimeError('no name today')\n"
                    "    def decide(self, ctx):\n        pass\n", "no name today"),
}


@pytest.mark.parametrize("kind", list(USER_MODULES))
def test_user_policy_mistakes(capsys, tmp_path, monkeypatch, kind):
    source, needle = USER_MODULES[kind]
    module = f"user_{kind}_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "r"
    _refused(capsys, ["run", "--policy", f"{module}:P", "--weeks", "1", "--out", str(out)], module, needle, out=out)


@pytest.mark.parametrize("argv, needles", [
    (["--policy", "jit", "--policy", "jit"], ["'jit'", "twice"]),
    (["--policy", "cpp", "--policy", "cpp"], ["'cpp'", "twice"]),
    (["--policy", "telepathy"], ["telepathy"]),
    (["--policy", "no_such_module_xyz:P"], ["no_such_module_xyz"]),
    (["--policy", "json:"], ["module:Class"]),
    (["--policy", ":P"], ["module:Class"]),
    (["--policy", "split_savings"], ["split_savings"]),
], ids=["jit_twice", "cpp_twice", "unknown", "no_module", "no_class", "no_module_name", "typo"])
def test_policy_flag_mistakes(capsys, tmp_path, argv, needles):
    out = tmp_path / "r"
    _refused(capsys, ["run", *argv, "--weeks", "1", "--out", str(out)], *needles, out=out)


def test_a_policy_failing_in_its_first_week_leaves_nothing(capsys, tmp_path, monkeypatch):
    (tmp_path / "failfirst.py").write_text(textwrap.dedent("""\
        class P:
            name = "p"
            def decide(self, ctx):
                raise ArithmeticError("cannot plan")
    """))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "r"
    err = _refused(capsys, ["run", "--policy", "failfirst:P", "--weeks", "2", "--json", "--out", str(out)], "cannot plan")
    assert "policy 'p' failed" in err
    # jit (run first) finished: its results are kept, and said where
    assert (out / "ledger.parquet").exists() and str(out) in err


def test_the_only_policy_failing_writes_no_empty_folder(capsys, tmp_path, monkeypatch):
    import sim.runner

    class Broken(Exception):
        pass

    def explode(self, *args, **kwargs):
        raise Broken("LP infeasible")

    monkeypatch.setattr(sim.runner.World, "run", explode)
    out = tmp_path / "r"
    err = _refused(capsys, ["run", "--policy", "jit", "--weeks", "1", "--out", str(out)], "LP infeasible", "nothing was written")
    assert not out.exists()
    assert "Empty DataFrame" not in err


# -- run --out -----------------------------------------------------------------------------------------
def test_run_refuses_a_non_empty_out_before_simulating(capsys, tmp_path, monkeypatch):
    import experiments.commands.run as run_cmd

    out = tmp_path / "r"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    monkeypatch.setattr(run_cmd, "run_policies", lambda *a, **k: pytest.fail("simulated before checking --out"))
    _refused(capsys, ["run", "--policy", "jit", "--weeks", "1", "--out", str(out)], str(out), "not empty", "--force")
    _refused(capsys, ["run", "--policy", "jit", "--weeks", "1", "--out", str(out), "--force"], "not a results folder")
    assert (out / "notes.txt").read_text() == "mine"
    (tmp_path / "afile").write_text("x")
    _refused(capsys, ["run", "--policy", "jit", "--weeks", "1", "--out", str(tmp_path / "afile")], "not a folder")


def test_force_replaces_a_results_folder_whole(capsys, tmp_path):
    out = tmp_path / "r"
    assert main(["run", "--policy", "jit", "--weeks", "1", "--out", str(out)]) == 0
    (out / "plots").mkdir()
    (out / "plots" / "old.png").write_text("stale")
    capsys.readouterr()
    assert main(["run", "--policy", "jit", "--weeks", "1", "--out", str(out), "--force"]) == 0
    assert not (out / "plots").exists() and (out / "ledger.parquet").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_force_never_replaces_a_folder_of_ones_own_that_holds_a_scenario_yaml(capsys, tmp_path, monkeypatch):
    """A study folder holding the user's ``scenario.yaml`` and notes is not a results folder: --force
    replaced it whole (notes deleted) because one results file name was enough."""
    import experiments.commands.run as run_cmd

    study = tmp_path / "study"
    study.mkdir()
    (study / "scenario.yaml").write_text(DEFAULT_TEXT)
    (study / "notes.txt").write_text("mine")
    monkeypatch.setattr(run_cmd, "run_policies", lambda *a, **k: pytest.fail("simulated before checking --out"))
    _refused(capsys, ["run", "--scenario", str(study / "scenario.yaml"), "--policy", "jit", "--weeks", "1",
                      "--out", str(study), "--force"], "not a results folder", "ledger.parquet")
    assert sorted(p.name for p in study.iterdir()) == ["notes.txt", "scenario.yaml"]


@pytest.mark.parametrize("out", [".", "..", "sub/..", "sub/../."])
def test_out_that_is_the_current_folder_is_refused_before_simulating(capsys, tmp_path, monkeypatch, out):
    """``--out .`` simulated, then failed with a ValueError traceback (an empty folder name) and lost the run."""
    import experiments.commands.run as run_cmd

    here = tmp_path / "here"
    (here / "sub").mkdir(parents=True)
    monkeypatch.chdir(here)
    monkeypatch.setattr(run_cmd, "run_policies", lambda *a, **k: pytest.fail("simulated before checking --out"))
    _refused(capsys, ["run", "--policy", "jit", "--weeks", "1", "--out", out], f"--out {Path(out)}", "current folder")
    _refused(capsys, ["run", "--policy", "jit", "--weeks", "1", "--out", out, "--force"], "current folder")


def test_out_with_a_trailing_dot_is_written_whole(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--policy", "jit", "--weeks", "1", "--out", "r/."]) == 0
    assert main(["run", "--policy", "jit", "--weeks", "1", "--out", "r/.", "--force"]) == 0
    assert (tmp_path / "r" / "ledger.parquet").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # nothing left beside it


def test_replay_refuses_a_non_empty_out_too(capsys, tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    _refused(capsys, ["replay", "pilot", "--policy", "jit", "--weeks", "1", "--out", str(out)], "not empty", "--force")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    fresh = tmp_path / "fresh"
    assert main(["replay", "pilot", "--policy", "jit", "--weeks", "1", "--out", str(fresh)]) == 0
    assert main(["replay", "pilot", "--policy", "jit", "--weeks", "1", "--out", str(fresh), "--force"]) == 0
    assert json.loads((fresh / "metadata.json").read_text())["kind"] == "replay"


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_results_files_respect_the_umask(capsys, tmp_path, umask):
    old = os.umask(umask)
    try:
        out = tmp_path / "r"
        assert main(["run", "--policy", "jit", "--weeks", "1", "--out", str(out)]) == 0
    finally:
        os.umask(old)
    for path in [out, *out.iterdir()]:
        expected = (0o777 if path.is_dir() else 0o666) & ~umask
        assert path.stat().st_mode & 0o777 == expected, (path.name, oct(path.stat().st_mode))


# -- command-line flags ---------------------------------------------------------------------------------
FLAG_CASES = [
    (["run", "--weeks", "0"], ["--weeks"]),
    (["run", "--weeks", "-3"], ["--weeks"]),
    (["run", "--weeks", "two"], ["two"]),
    (["run", "--weeks", "1e3"], ["1e3"]),
    (["run", "--seed", "-1"], ["--seed"]),
    (["run", "--scenario", "nowhere.yaml"], ["nowhere.yaml", "no such file"]),
    (["plan", "--week", "100", "--policy", "jit"], ["--week 100", "8 weeks"]),
    (["plan", "--week", "8", "--policy", "jit"], ["--week 8", "weeks 0 to 7"]),
    (["plan", "--week", "-1"], ["--week"]),
    (["plan", "--week", "three"], ["three"]),
    (["plan", "--seed", "-2"], ["--seed"]),
    (["plan", "--policy", "telepathy"], ["telepathy"]),
    (["menu", "--week", "8"], ["--week 8", "8 weeks"]),
    (["menu", "--week", "-1"], ["non-negative"]),
    (["menu", "--week", "x"], ["whole numbers"]),
    (["menu", "--sizes", "0"], ["positive"]),
    (["menu", "--set", "demand.cv=.inf", "--week", "0"], ["demand.cv", "finite"]),
    (["menu", "--set", "weeks=true", "--week", "0"], ["weeks", "true/false"]),
    (["sweep", "nowhere.yaml"], ["nowhere.yaml", "no such file"]),
    (["sweep", "experiments/specs/smoke.yaml", "--workers", "0"], ["--workers"]),
    (["sweep", "experiments/specs/smoke.yaml", "--scheduler", "tcp://x:1"], ["--scheduler"]),
    (["bench", "--sizes", "gigantic"], ["gigantic"]),
    (["bench", "--set", "eps_rell=1"], ["eps_rell"]),
    (["bench", "--set", "rho=.nan"], ["rho"]),
    (["bench", "--answer", "abs_tol=true"], ["abs_tol"]),
    (["plot", "no/such/folder"], ["no/such/folder"]),
    (["report", "no/such/folder"], ["no/such/folder"]),
    (["replay", "no/such/trace"], ["no/such/trace"]),
    (["scenario", "show", "nope"], ["nope", "built-in"]),
    (["scenario", "check", "nowhere.yaml"], ["nowhere.yaml"]),
    (["audit", "--mechanism", "bribery"], ["bribery"]),
    (["case", "scf", "--dist", "weird"], ["weird"]),
]


@pytest.mark.parametrize("argv, needles", FLAG_CASES, ids=[" ".join(a) for a, _ in FLAG_CASES])
def test_bad_flags(capsys, tmp_path, monkeypatch, argv, needles):
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(repo)  # specs named relative to the repository
    out = tmp_path / "out"
    extra = ["--out", str(out)] if argv[0] in ("run", "menu", "sweep", "audit", "replay") else []
    _refused(capsys, [*argv, *extra], *needles, out=out)


# -- sweep specs ------------------------------------------------------------------------------------------
SPEC_CASES = [
    ("name: x\npolicies: [jit]\nweeks: true\n", ["weeks"]),
    ("name: x\npolicies: [jit]\nreplications: true\n", ["replications"]),
    ("name: x\npolicies: [jit]\nreplications: .inf\n", ["replications"]),
    ("name: x\npolicies: [jit]\nroot_seed: -1\n", ["root_seed"]),
    ("name: my sweep\npolicies: [jit]\n", ["name"]),
    ("- name: x\n", ["mapping"]),
    ("name: x\npolicies: [jit]\npolicies: [cpp]\n", ["duplicate key 'policies'"]),
    ("name: x\npolicies: [jit, jit]\n", ["duplicates"]),
    ("name: x\npolicies: [jit, 'nomodule_xyz:P']\n", ["nomodule_xyz"]),
    ("name: x\npolicies: [jit, 'json:NoSuchClass']\n", ["NoSuchClass"]),
    ("name: x\npolicies: [jit]\ngrid: {demand.cv: [0.1, abc]}\n", ["grid.demand.cv.1", "abc"]),
    ("name: x\npolicies: [jit]\ngrid: {demand.cv: [0.1, .inf]}\n", ["grid.demand.cv.1", "finite"]),
    ("name: x\npolicies: [jit]\ngrid: {weeks: [1, true]}\n", ["grid.weeks.1", "true/false"]),
    ("name: x\npolicies: [jit]\ngrid: {fcs.PHX.lead_time: [1, 9]}\n", ["grid.fcs.PHX.lead_time.1", "horizon"]),
    ("name: x\npolicies: [jit]\ngrid: {policies.cpp-vcg.discount: [1.0, 3.0]}\n", ["grid.policies.cpp-vcg.discount.1", "discount"]),
    ("name: x\npolicies: [jit]\ngrid: {demand.cv: []}\n", ["needs at least one value"]),
    ("name: x\npolicies: [jit]\nlhs: {samples: 2, parameters: {demand.cv: {low: .nan, high: 0.4}}}\n", ["lhs"]),
    ("name: x\npolicies: [jit]\nlhs: {samples: 2, parameters: {demand.cv: {low: -1, high: 0.4}}}\n", ["lhs.parameters.demand.cv.low"]),
    ("name: x\npolicies: [jit]\nfixed: {horizon: .nan}\n", ["horizon"]),
    ("name: x\npolicies: [jit]\nweeks: 1000000000\n", ["weeks", "memory"]),
    # found in review: a design too large to plan hung for minutes (10^8 LHS samples) or ran out of memory
    ("name: x\npolicies: [jit]\nlhs: {samples: 100000000, parameters: {demand.cv: {low: 0.1, high: 0.4}}}\n",
     ["100,000,000 runs", "lhs.samples"]),
    ("name: x\npolicies: [jit]\nreplications: 1000000000\ngrid: {demand.cv: [0.1, 0.2]}\n", ["2,000,000,000 runs", "grid 2"]),
    ("name: x\npolicies: [jit]\ndescription: &a [*a]\n", ["not valid YAML"]),
    ("anchors:\n" + _bomb(8, "  ") + "name: x\npolicies: [jit]\n", ["not valid YAML"]),
]


@pytest.mark.parametrize("text, needles", SPEC_CASES, ids=[f"spec{i}" for i in range(len(SPEC_CASES))])
def test_bad_sweep_specs_are_refused_before_any_run(capsys, tmp_path, text, needles):
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    out = tmp_path / "out"
    _refused(capsys, ["sweep", str(spec), "--out", str(out)], str(spec), *needles)
    assert not (out / "runs").exists() or not any((out / "runs").iterdir())


# -- traces ------------------------------------------------------------------------------------------------
def _trace(tmp_path: Path) -> Path:
    src = resources.files("sim") / "scenarios" / "traces" / "pilot"
    dst = tmp_path / "trace"
    shutil.copytree(src, dst)
    return dst


TRACE_DAMAGE = {
    "trace_json_corrupt": (lambda t: (t / "trace.json").write_text("{"), "trace.json"),
    "trace_json_list": (lambda t: (t / "trace.json").write_text("[]"), "trace.json"),
    "demand_missing": (lambda t: (t / "demand.csv").unlink(), "demand.csv"),
    "demand_bad_number": (lambda t: (t / "demand.csv").write_text("week,region,product,units\n0,SouthCentral,P00,lots\n"), "demand.csv"),
    "demand_no_column": (lambda t: (t / "demand.csv").write_text("week,region,units\n0,SouthCentral,1\n"), "demand.csv"),
    "delays_missing": (lambda t: (t / "delays.csv").unlink(), "delays.csv"),
    "scenario_yaml_dup": (lambda t: (t / "scenario.yaml").write_text((t / "scenario.yaml").read_text() + "\nweeks: 3\n"), "duplicate key"),
}


@pytest.mark.parametrize("kind", list(TRACE_DAMAGE))
def test_damaged_traces(capsys, tmp_path, kind):
    trace = _trace(tmp_path)
    damage, needle = TRACE_DAMAGE[kind]
    damage(trace)
    out = tmp_path / "r"
    _refused(capsys, ["replay", str(trace), "--policy", "jit", "--weeks", "1", "--out", str(out)], needle, out=out)


# -- results folders ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "r"
    assert main(["run", "--policy", "jit", "--policy", "first-best", "--weeks", "2", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("sweep")
    (tmp / "spec.yaml").write_text("name: tiny\nweeks: 1\npolicies: [jit]\nreplications: 2\n")
    assert main(["sweep", str(tmp / "spec.yaml"), "--out", str(tmp / "out"), "--workers", "1"]) == 0
    return tmp / "out"


RUN_DAMAGE = {
    "ledger_truncated": (lambda f: _truncate(f / "ledger.parquet"), "ledger.parquet"),
    "ledger_text": (lambda f: (f / "ledger.parquet").write_text("hello"), "ledger.parquet"),
    "flows_truncated": (lambda f: _truncate(f / "flows.parquet"), "flows.parquet"),
    "decisions_empty": (lambda f: (f / "decisions.parquet").write_bytes(b""), "decisions.parquet"),
    "summary_empty_object": (lambda f: (f / "summary.json").write_text("{}"), "summary.json"),
    "summary_corrupt": (lambda f: (f / "summary.json").write_text('{"policies": '), "summary.json"),
    "summary_list": (lambda f: (f / "summary.json").write_text("[]"), "summary.json"),
    "summary_policies_list": (lambda f: (f / "summary.json").write_text('{"policies": [1], "weeks": 2}'), "summary.json"),
    "summary_totals_number": (lambda f: (f / "summary.json").write_text('{"policies": {"jit": 5}, "weeks": 2}'), "summary.json"),
    "metadata_corrupt": (lambda f: (f / "metadata.json").write_text("nope"), "metadata.json"),
    "scenario_corrupt": (lambda f: (f / "scenario.yaml").write_text("weeks: [\n"), "scenario.yaml"),
    "ledger_wrong_table": (lambda f: _other_table(f / "ledger.parquet"), "ledger.parquet"),
    # found in review: these ended in a KeyError, AttributeError or TypeError traceback
    "flows_missing": (lambda f: (f / "flows.parquet").unlink(), "flows.parquet"),
    "decisions_missing": (lambda f: (f / "decisions.parquet").unlink(), "decisions.parquet"),
    "summary_participation_number": (lambda f: _edit_json(f / "summary.json", lambda d: d.update(participation={"first-best": 3})),
                                     "summary.json"),
    "summary_totals_text": (lambda f: _edit_json(f / "summary.json", lambda d: d["policies"]["jit"].update(social_cost="abc")),
                            "summary.json"),
    "ledger_values_text": (lambda f: _edit_table(f / "ledger.parquet", lambda df: df.assign(value=df["value"].astype(str))),
                           "ledger.parquet"),
    # the per-party figures (policies.<p>.parties.<name>): a list, and a text where a number belongs
    "summary_parties_list": (lambda f: _edit_json(f / "summary.json", lambda d: d["policies"]["jit"].update(parties=[1, 2])),
                             "summary.json"),
    "summary_party_cost_text": (lambda f: _edit_json(f / "summary.json",
                                                     lambda d: d["policies"]["jit"]["parties"]["vendor"].update(net_cost="abc")),
                                "summary.json"),
}


def _edit_json(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _edit_table(path: Path, change: Callable[[Any], Any]) -> None:
    import pandas as pd

    change(pd.read_parquet(path)).to_parquet(path, index=False)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _other_table(path: Path) -> None:
    import pandas as pd

    pd.DataFrame({"a": [1, 2]}).to_parquet(path)


@pytest.mark.parametrize("command", ["plot", "report"])
@pytest.mark.parametrize("kind", list(RUN_DAMAGE))
def test_damaged_run_folders(capsys, tmp_path, run_folder, command, kind):
    folder = tmp_path / "copy"
    shutil.copytree(run_folder, folder)
    damage, needle = RUN_DAMAGE[kind]
    damage(folder)
    _refused(capsys, [command, str(folder)], str(folder / needle) if "/" not in needle else needle)


SWEEP_DAMAGE = {
    "sweep_json_corrupt": (lambda f: (f / "sweep.json").write_text("{"), "sweep.json"),
    "sweep_json_list": (lambda f: (f / "sweep.json").write_text("[1]"), "sweep.json"),
    "sweep_json_missing": (lambda f: (f / "sweep.json").unlink(), "without its sweep.json"),
    "summary_missing": (lambda f: (f / "summary.parquet").unlink(), "no summary.parquet"),
    "summary_truncated": (lambda f: _truncate(f / "summary.parquet"), "summary.parquet"),
    "runs_truncated": (lambda f: _truncate(f / "runs.parquet"), "runs.parquet"),
    # found in review: these ended in an AttributeError, KeyError or TypeError traceback
    "runs_missing": (lambda f: (f / "runs.parquet").unlink(), "runs.parquet"),
    "summary_other_table": (lambda f: _other_table(f / "summary.parquet"), "summary.parquet"),
    "sweep_json_parameters_number": (lambda f: _edit_json(f / "sweep.json", lambda d: d.update(parameters=3)), "sweep.json"),
}


@pytest.mark.parametrize("command", ["plot", "report"])
@pytest.mark.parametrize("kind", list(SWEEP_DAMAGE))
def test_damaged_sweep_folders(capsys, tmp_path, sweep_folder, command, kind):
    folder = tmp_path / "copy"
    shutil.copytree(sweep_folder, folder)
    damage, needle = SWEEP_DAMAGE[kind]
    damage(folder)
    _refused(capsys, [command, str(folder)], needle)


@pytest.mark.parametrize("command", ["plot", "report"])
def test_not_a_results_folder(capsys, tmp_path, command):
    (tmp_path / "empty").mkdir()
    _refused(capsys, [command, str(tmp_path / "empty")], "not a results folder")
    (tmp_path / "afile").write_text("x")
    _refused(capsys, [command, str(tmp_path / "afile")], "afile")


def test_a_damaged_menu_folder(capsys, tmp_path):
    (tmp_path / "menu_efficiency.json").write_text('{"rows": 3}')
    _refused(capsys, ["plot", str(tmp_path)], "menu_efficiency.json")


# -- resuming a sweep with damaged runs --------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["ledger", "summary", "flows_missing"])
def test_resume_sets_a_damaged_run_aside_and_runs_it_again(capsys, tmp_path, sweep_folder, damage):
    folder = tmp_path / "out"
    shutil.copytree(sweep_folder, folder)
    runs = sorted(p for p in (folder / "runs").iterdir() if not p.name.startswith("."))
    victim = runs[0]
    if damage == "ledger":
        _truncate(victim / "ledger.parquet")
    elif damage == "flows_missing":  # was taken as finished, and its flows silently left out of the gathered table
        (victim / "flows.parquet").unlink()
    else:
        (victim / "summary.json").write_text("{}")
    spec = sweep_folder.parent / "spec.yaml"
    started_by = json.loads((folder / "sweep.json").read_text())["command"]
    assert main(["sweep", str(spec), "--out", str(folder), "--resume", "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["runs_damaged"] == 1 and report["runs_done"] == 1 and report["runs_skipped"] == len(runs) - 1
    assert f"run {victim.name} is damaged" in captured.err and "running it again" in captured.err
    assert "Traceback" not in captured.err
    aside = list((folder / "runs" / ".damaged").iterdir())
    assert len(aside) == 1 and aside[0].name.startswith(victim.name)
    assert (victim / "ledger.parquet").exists()  # run again
    meta = json.loads((folder / "sweep.json").read_text())
    # the command that started the sweep is kept; the resume is listed after it
    assert meta["command"] == started_by and len(meta["resumed"]) == 1 and set(meta["resumed"][0]) == {"command", "created"}
    assert main(["plot", str(folder)]) == 0


# -- sweeps: the folder lock and orphaned workers -----------------------------------------------------------
def test_a_second_sweep_in_the_same_folder_is_refused_naming_the_holder(capsys, tmp_path):
    from experiments.sweep import sweep_lock

    (tmp_path / "spec.yaml").write_text("name: tiny\nweeks: 1\npolicies: [jit]\n")
    out = tmp_path / "out"
    out.mkdir()
    with sweep_lock(out):
        err = _refused(capsys, ["sweep", str(tmp_path / "spec.yaml"), "--out", str(out)], "another sweep is running",
                       f"pid {os.getpid()}")
        assert not (out / "runs").exists()
    assert "another sweep" in err
    assert main(["sweep", str(tmp_path / "spec.yaml"), "--out", str(out)]) == 0  # released with the holder


def test_workers_exit_when_the_sweep_process_is_killed(tmp_path):
    """A parent starts a child that watches it, then is killed with SIGKILL: the child leaves by itself."""
    import signal
    import subprocess
    import sys

    import psutil

    code = textwrap.dedent("""\
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c",
            "import os, sys, time\\n"
            "from experiments.watchdog import watch_parent\\n"
            "watch_parent(int(sys.argv[1]), float(sys.argv[2]), interval=0.2)\\n"
            "time.sleep(120)\\n", *map(str, __import__("experiments.watchdog", fromlist=["x"]).parent_identity())])
        print(child.pid, flush=True)
        time.sleep(120)
    """)
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": repo}
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=repo)
    child_pid = int(parent.stdout.readline())
    child = psutil.Process(child_pid)
    time.sleep(1.0)
    assert child.is_running() and child.status() != psutil.STATUS_ZOMBIE
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.time() + 10
    while time.time() < deadline:
        if not child.is_running() or child.status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.1)
    else:
        child.kill()
        pytest.fail("the watching child outlived its killed parent by 10 s")


def test_a_lock_file_that_cannot_be_opened_is_named(capsys, tmp_path):
    (tmp_path / "spec.yaml").write_text("name: tiny\nweeks: 1\npolicies: [jit]\n")
    out = tmp_path / "out"
    (out / "sweep.lock").mkdir(parents=True)  # was an IsADirectoryError traceback
    _refused(capsys, ["sweep", str(tmp_path / "spec.yaml"), "--out", str(out)], "sweep.lock", "lock file")


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="the wall-clock start time is psutil's on Linux")
def test_a_step_of_the_system_clock_does_not_end_the_workers(tmp_path):
    """psutil's wall-clock start time of a process moves when the system clock is stepped (NTP, a
    resumed virtual machine): the watchdog took the (living) sweep for gone and ended every worker.
    The step is played by moving psutil's boot time 5 s in the watching child."""
    import subprocess
    import sys

    from experiments.watchdog import ORPHAN_EXIT, parent_identity

    code = textwrap.dedent("""\
        import sys, time
        import psutil, psutil._pslinux
        from experiments.watchdog import watch_parent
        watch_parent(int(sys.argv[1]), float(sys.argv[2]), interval=0.05)
        time.sleep(0.3)
        real = psutil._pslinux.boot_time
        psutil._pslinux.boot_time = psutil.boot_time = lambda: real() + 5.0  # the clock is stepped
        time.sleep(0.6)
        print("still working", flush=True)
    """)
    repo = str(Path(__file__).resolve().parents[1])
    child = subprocess.run([sys.executable, "-c", code, *map(str, parent_identity())], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": repo}, cwd=repo, timeout=60)
    assert child.returncode != ORPHAN_EXIT, "the watchdog ended a worker whose sweep is alive"
    assert child.returncode == 0 and "still working" in child.stdout, child.stderr


def test_workers_exit_when_the_killed_sweep_is_not_reaped_yet(tmp_path):
    """A sweep killed by a program that has not yet waited for it is a zombie: it has an id and a start
    time but runs no more; its workers must leave all the same."""
    import signal
    import subprocess
    import sys

    import psutil

    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": repo}
    sweep = subprocess.Popen([sys.executable, "-c", "from experiments.watchdog import parent_identity\n"
                              "import time\nprint(*parent_identity(), flush=True)\ntime.sleep(120)\n"],
                             stdout=subprocess.PIPE, text=True, env=env, cwd=repo)
    try:
        identity = sweep.stdout.readline().split()
        worker = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom experiments.watchdog import watch_parent\n"
                                   "watch_parent(int(sys.argv[1]), float(sys.argv[2]), interval=0.1)\ntime.sleep(120)\n",
                                   *identity], env=env, cwd=repo)
        time.sleep(1.0)
        assert worker.poll() is None, "the worker left while its sweep was alive"
        os.kill(sweep.pid, signal.SIGKILL)  # not waited for: a zombie until the wait below
        deadline = time.time() + 10
        while time.time() < deadline and psutil.Process(sweep.pid).status() != psutil.STATUS_ZOMBIE:
            time.sleep(0.05)
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
            pytest.fail("the worker outlived its killed (zombie) sweep by 10 s")
        assert psutil.Process(sweep.pid).status() == psutil.STATUS_ZOMBIE  # it left while the sweep was a zombie
    finally:
        sweep.kill()
        sweep.wait()


# -- the smaller items -------------------------------------------------------------------------------------------
def test_menu_old_weeks_spelling_still_works_with_a_note(capsys, tmp_path):
    out = tmp_path / "m"
    assert main(["menu", "--sizes", "1", "--weeks", "0", "--deterministic", "--json", "--format", "png", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "now spelled --week" in captured.err
    assert f"menu results in {out}" in captured.err
    rows = json.loads(captured.out)
    assert {r["week"] for r in rows} == {0}


def test_plan_prints_whole_product_names(capsys, tmp_path):
    def rename(d):
        d["products"][0]["name"] = "extra_large_detergent_bottle"
        for where in [*d["fcs"], *d["origins"]]:
            stock = where.get("initial_stock") or {}
            if "detergent" in stock:
                stock["extra_large_detergent_bottle"] = stock.pop("detergent")
        for o in d["origins"]:
            if isinstance(o["production_cost"], dict) and "detergent" in o["production_cost"]:
                o["production_cost"]["extra_large_detergent_bottle"] = o["production_cost"].pop("detergent")

    path = _scenario_file(tmp_path, rename)
    assert main(["plan", "--scenario", str(path), "--policy", "jit"]) == 0
    assert "extra_large_detergent_bottle" in capsys.readouterr().out
