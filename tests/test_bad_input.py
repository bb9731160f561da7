"""Bad input through the real command: one clear message naming the file, the field and the value,
exit status 2, no traceback, and no results folder."""

from __future__ import annotations

import copy
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from experiments.cli import main

DEFAULT = yaml.safe_load((resources.files("sim") / "scenarios" / "default.yaml").read_text())
TWO_VENDORS = yaml.safe_load((resources.files("sim") / "scenarios" / "two-vendors.yaml").read_text())


def _write(tmp_path: Path, name: str, change: Callable[[dict[str, Any]], None], base: dict[str, Any] = DEFAULT) -> Path:
    data = copy.deepcopy(base)
    change(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _run(capsys, tmp_path: Path, scenario: str, *extra: str) -> tuple[int, str, str, Path]:
    out = tmp_path / "results"
    code = main(["run", "--scenario", scenario, "--policy", "jit", "--weeks", "1", "--json", "--out", str(out), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err, out


def _assert_clear(code: int, out: str, err: str, results: Path, *needles: str) -> None:
    assert code == 2
    assert "Traceback" not in err and "Traceback" not in out
    assert err.startswith("flosim: error: ") and err.count("flosim: error") == 1, err
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"
    assert out == ""  # no JSON summary for a run that never started
    assert not results.exists()  # and no results folder


def _delete(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda d: d.pop(key)


# (file name, change, strings the message must contain: the field and the offending value)
SCHEMA_CASES = [
    ("unknown_top.yaml", lambda d: d.update(colour="red"), ["colour", "red", "unknown field"]),
    ("unknown_nested.yaml", lambda d: d["fcs"][0].update(recieving_cost=0.3), ["fcs.0.recieving_cost", "0.3", "unknown field"]),
    ("negative_holding.yaml", lambda d: d["products"][1].update(holding_cost=-0.5), ["products.1.holding_cost", "-0.5"]),
    ("negative_lane.yaml", lambda d: d["lanes"][2].update(truckload_cost=-1.25), ["lanes.2.truckload_cost", "-1.25"]),
    ("negative_outbound.yaml", lambda d: d["outbound_cost"]["DAL"].update(SouthWest=-1.5), ["outbound_cost.DAL.SouthWest", "-1.5"]),
    ("negative_production.yaml", lambda d: d["origins"][1].update(production_cost=-2.3), ["'origins.1.production_cost' = -2.3"]),
    (
        "negative_production_map.yaml",
        lambda d: d["origins"][0].update(production_cost={"detergent": 2.0, "paper_towels": -1.0, "razors": 2.0}),
        ["'origins.0.production_cost.paper_towels' = -1.0", "greater than or equal to 0"],
    ),
    ("production_not_a_number.yaml", lambda d: d["origins"][2].update(production_cost="cheap"), ["'origins.2.production_cost' = 'cheap'"]),
    ("negative_initial_stock.yaml", lambda d: d["fcs"][2]["initial_stock"].update(razors=-5), ["fcs.2.initial_stock.razors", "-5"]),
    ("negative_delay_prob.yaml", lambda d: d["lanes"][1].update(delay={"values": [0, 1], "probs": [1.2, -0.2]}), ["lanes.1.delay.probs.1", "-0.2"]),
    ("lane_unknown_fc.yaml", lambda d: d["lanes"][3].update(fc="SEA"), ["lanes.3.fc", "SEA", "unknown FC"]),
    ("lane_unknown_origin.yaml", lambda d: d["lanes"][1].update(origin="DET"), ["lanes.1.origin", "DET", "unknown origin"]),
    ("delay_probs.yaml", lambda d: d["lanes"][0]["delay"].update(probs=[0.5, 0.4]), ["lanes.0.delay", "probs", "0.9", "[0.5, 0.4]"]),
    ("delay_probs_over.yaml", lambda d: d["lanes"][5]["delay"].update(probs=[0.85, 0.25]), ["lanes.5.delay", "probs", "1.1"]),
    ("horizon_zero.yaml", lambda d: d.update(horizon=0), ["'horizon'", "= 0"]),
    ("horizon_negative.yaml", lambda d: d.update(horizon=-3), ["'horizon'", "-3"]),
    ("weeks_zero.yaml", lambda d: d.update(weeks=0), ["'weeks'", "= 0"]),
    ("not_a_number.yaml", lambda d: d["products"][0].update(wholesale_price="cheap"), ["products.0.wholesale_price", "cheap"]),
    ("missing_regions.yaml", _delete("regions"), ["'regions'", "missing"]),
    ("lead_time_zero.yaml", lambda d: d["fcs"][1].update(lead_time=0), ["fcs.1.lead_time", "0"]),
    ("schema_version.yaml", lambda d: d.update(schema_version=7), ["schema_version", "7"]),
]


@pytest.mark.parametrize("name, change, needles", SCHEMA_CASES, ids=[c[0] for c in SCHEMA_CASES])
def test_invalid_scenario_file(capsys, tmp_path, name, change, needles):
    path = _write(tmp_path, name, change)
    code, out, err, results = _run(capsys, tmp_path, str(path))
    _assert_clear(code, out, err, results, str(path), *needles)
    assert len(err.strip().splitlines()) == 1, err  # one problem, one line (no pydantic internals)
    assert "constrained-" not in err and "dict[" not in err


def _vendor(i: int, **fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda d: d["vendors"][i].update(fields)


def _to_v1_with_vendors(d: dict[str, Any]) -> None:
    d.update(DEFAULT, vendors=d["vendors"])


def _generated_with_price(d: dict[str, Any]) -> None:
    d.pop("products")
    d["product_generator"] = {"count": 4, "wholesale_price": 5.0}
    for f in d["fcs"]:
        f["initial_stock"] = {}
    for v in d["vendors"]:
        v.update(products="all", wholesale_price=5.0)
        for o in v["origins"]:
            o.update(production_cost=2.0, initial_stock={})


# several vendors (schema version 2, on the built-in two-vendors scenario): (file name, change, needles)
VENDOR_CASES = [
    ("duplicate_vendor.yaml", _vendor(1, name="acme"), ["'vendors' = 'acme'", "duplicate name"]),
    ("vendor_retailer.yaml", _vendor(1, name="retailer"), ["vendors.retailer.name", "'retailer'", "reserved"]),
    ("vendor_mechanism.yaml", _vendor(0, name="mechanism"), ["vendors.mechanism.name", "'mechanism'", "reserved"]),
    ("vendor_empty_name.yaml", _vendor(1, name=""), ["vendors.1.name", "''", "needs a name"]),
    ("vendor_blank_name.yaml", _vendor(0, name="  "), ["vendors.0.name", "needs a name"]),
    ("vendor_without_lanes.yaml", _vendor(1, lanes=[]), ["vendors.sonora.lanes", "at least one lane"]),
    ("vendor_without_origins.yaml", _vendor(1, origins=[], lanes=[]), ["vendors.sonora.origins", "at least one origin"]),
    ("lane_from_other_vendor.yaml", lambda d: d["vendors"][1]["lanes"][2].update(origin="CIN"),
     ["vendors.sonora.lanes.2.origin", "'CIN'", "vendor 'acme'"]),
    ("lane_from_no_vendor.yaml", lambda d: d["vendors"][0]["lanes"][1].update(origin="DET"),
     ["vendors.acme.lanes.1.origin", "'DET'", "unknown origin"]),
    ("origin_of_two_vendors.yaml", lambda d: d["vendors"][1]["origins"].append({**d["vendors"][0]["origins"][2]}),
     ["vendors.sonora.origins.RNO", "'RNO'", "vendor 'acme'"]),
    ("product_nobody_supplies.yaml", lambda d: d["vendors"][1]["products"].pop("sunscreen"),
     ["products.sunscreen", "no vendor supplies"]),
    ("vendor_unknown_product.yaml", lambda d: d["vendors"][0]["products"].update(shampoo=4.0),
     ["vendors.acme.products.shampoo", "unknown product"]),
    ("v2_top_level_origins.yaml", lambda d: d.update(origins=DEFAULT["origins"]), ["'origins'", "schema_version 2"]),
    ("v2_top_level_lanes.yaml", lambda d: d.update(lanes=DEFAULT["lanes"]), ["'lanes'", "schema_version 2"]),
    ("v2_product_price.yaml", lambda d: d["products"][2].update(wholesale_price=8.0),
     ["products.razors.wholesale_price", "8.0", "schema_version 2"]),
    ("v2_generator_price.yaml", _generated_with_price, ["product_generator.wholesale_price", "5.0", "products: all"]),
    ("v2_without_vendors.yaml", lambda d: d.pop("vendors"), ["'vendors'", "at least one vendor"]),
    ("v1_with_vendors.yaml", _to_v1_with_vendors, ["'vendors'", "schema_version 2"]),
    ("vendor_stock_not_supplied.yaml", lambda d: d["vendors"][1]["origins"][0]["initial_stock"].update(razors=5),
     ["vendors.sonora.origins.TUS.initial_stock.razors", "does not supply"]),
    ("vendor_stock_unknown.yaml", lambda d: d["vendors"][0]["origins"][0]["initial_stock"].update(shampoo=5),
     ["vendors.acme.origins.CIN.initial_stock.shampoo", "unknown product"]),
    ("vendor_production_missing.yaml", lambda d: d["vendors"][1]["origins"][0]["production_cost"].pop("sunscreen"),
     ["vendors.sonora.origins.TUS.production_cost", "sunscreen", "without a production cost"]),
    ("vendor_production_unknown.yaml", lambda d: d["vendors"][1]["origins"][0]["production_cost"].update(shampoo=1.0),
     ["vendors.sonora.origins.TUS.production_cost.shampoo", "unknown product"]),
    ("vendor_all_without_price.yaml", _vendor(0, products="all"), ["vendors.0.wholesale_price", "needs a wholesale_price"]),
    ("vendor_price_without_all.yaml", _vendor(1, wholesale_price=5.5), ["vendors.1.wholesale_price", "5.5", "only with products 'all'"]),
    ("vendor_products_word.yaml", _vendor(1, products="some"), ["vendors.1.products", "'some'", "'all'"]),
    ("vendor_negative_price.yaml", lambda d: d["vendors"][1]["products"].update(detergent=-5.8),
     ["vendors.1.products.detergent", "-5.8"]),
    ("vendor_duplicate_lane.yaml", lambda d: d["vendors"][1]["lanes"].append(dict(d["vendors"][1]["lanes"][1])),
     ["vendors.sonora.lanes", "TUS->DAL", "duplicate"]),
    ("vendor_lane_unknown_fc.yaml", lambda d: d["vendors"][1]["lanes"][1].update(fc="SEA"), ["vendors.sonora.lanes.1.fc", "SEA", "unknown FC"]),
    ("vendor_unknown_field.yaml", _vendor(0, colour="red"), ["vendors.0.colour", "unknown field"]),
    ("vendor_missing_name.yaml", lambda d: d["vendors"][0].pop("name"), ["vendors.0.name", "missing"]),
]


@pytest.mark.parametrize("name, change, needles", VENDOR_CASES, ids=[c[0] for c in VENDOR_CASES])
def test_invalid_several_vendor_file(capsys, tmp_path, name, change, needles):
    path = _write(tmp_path, name, change, base=TWO_VENDORS)
    code, out, err, results = _run(capsys, tmp_path, str(path))
    _assert_clear(code, out, err, results, str(path), *needles)
    assert len(err.strip().splitlines()) == 1, err
    assert "constrained-" not in err and "dict[" not in err and "literal" not in err


def test_malformed_yaml(capsys, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nweeks: 4\nfcs: [DAL, PHX\nregions: {a: b\n")
    code, out, err, results = _run(capsys, tmp_path, str(path))
    _assert_clear(code, out, err, results, str(path), "not valid YAML", "line ")


def test_missing_file(capsys, tmp_path):
    path = tmp_path / "nowhere" / "scenario.yaml"
    code, out, err, results = _run(capsys, tmp_path, str(path))
    _assert_clear(code, out, err, results, str(path), "no such file", "default")  # lists the built-ins


@pytest.mark.parametrize(
    "content, needle",
    [("", "mapping"), ("- 1\n- 2\n", "mapping"), ("just a string\n", "mapping")],
    ids=["empty", "list", "scalar"],
)
def test_file_that_is_not_a_mapping(capsys, tmp_path, content, needle):
    path = tmp_path / "odd.yaml"
    path.write_text(content)
    code, out, err, results = _run(capsys, tmp_path, str(path))
    _assert_clear(code, out, err, results, str(path), needle)


def test_folder_instead_of_file(capsys, tmp_path):
    folder = tmp_path / "adir"
    folder.mkdir()
    code, out, err, results = _run(capsys, tmp_path, str(folder))
    _assert_clear(code, out, err, results, str(folder), "folder")


def test_binary_file(capsys, tmp_path):
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00\x81garbage")
    code, out, err, results = _run(capsys, tmp_path, str(path))
    _assert_clear(code, out, err, results, str(path))


def test_unknown_policy(capsys, tmp_path):
    code, out, err, results = _run(capsys, tmp_path, "default", "--policy", "telepathy")
    _assert_clear(code, out, err, results, "telepathy", "jit")  # names the built-ins


def test_policy_module_that_does_not_exist(capsys, tmp_path):
    code, out, err, results = _run(capsys, tmp_path, "default", "--policy", "no_such_module_xyz:Policy")
    _assert_clear(code, out, err, results, "no_such_module_xyz")


@pytest.mark.parametrize("args, needle", [(["--weeks", "0"], "--weeks"), (["--seed", "-4"], "--seed"), (["--weeks", "two"], "two")])
def test_bad_command_line_values(args, needle, tmp_path, capsys):
    """argparse errors are the command line's own: usage plus one message, exit 2, no traceback."""
    with pytest.raises(SystemExit) as info:
        main(["run", "--policy", "jit", "--out", str(tmp_path / "r"), *args])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert needle in err and "Traceback" not in err and err.count("error:") == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "name, change, needles",
    [SCHEMA_CASES[1], SCHEMA_CASES[8]],
    ids=["unknown_nested", "delay_probs"],
)
def test_real_process_reports_bad_scenario(tmp_path, name, change, needles):
    """The same through a separate process, as a user runs it."""
    path = _write(tmp_path, name, change)
    r = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "run", "--scenario", str(path), "--policy", "jit", "--json",
         "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stdout == ""
    for needle in [str(path), *needles]:
        assert needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
