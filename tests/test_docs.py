"""Every code block in the README and the docs works as written.

* ``python`` blocks run, in page order, in one namespace per page (a later block may use a name an
  earlier one defined, as a reader would), in a fresh working folder. A block preceded by
  ``<!-- doc-test: skip (REASON) -->`` needs something the test machine does not have (a SLURM
  cluster): it is compiled only, and the reason is in the test id. ``<!-- doc-test: slow ... -->``
  runs only with ``FLOSIM_SLOW=1``.
* ``bash`` blocks: every ``flosim`` command in them is read by flosim's own argument parser (the
  command and every option exist and take the values given). Blocks preceded by
  ``<!-- doc-test: run -->`` also run in a shell, in a fresh folder, with ``flosim`` meaning this
  checkout, and must exit 0.
* ``yaml`` blocks parse with flosim's YAML loader; a block that is a whole sweep spec validates as one.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "experiments" / "cases" / "README.md",
         ROOT / "results" / "README.md"]
FENCE = re.compile(r"(?:<!-- doc-test: (?P<mark>\w+)[^>]*-->\n)?```(?P<lang>[a-z]*)\n(?P<body>.*?)```", re.S)


def blocks(page: Path) -> list[tuple[str, str, str | None, int]]:
    """(language, code, marker, line) of each fenced block of a page."""
    text = page.read_text()
    return [(m["lang"], m["body"], m["mark"], text[: m.start()].count("\n") + 1) for m in FENCE.finditer(text)]


def _cases(lang: str) -> list:
    out = []
    for page in PAGES:
        found = [(code, mark, line) for kind, code, mark, line in blocks(page) if kind == lang]
        if found:
            out.append(pytest.param(page, found, id=str(page.relative_to(ROOT))))
    return out


def test_the_pages_have_code_to_check():
    kinds = {kind for page in PAGES for kind, *_ in blocks(page)}
    assert {"python", "bash", "yaml"} <= kinds
    assert any("doc-test: run" in page.read_text() for page in PAGES)


@pytest.mark.parametrize("page, found", _cases("python"))
def test_python_blocks_run(page, found, tmp_path):
    """The page's blocks, in order, as one script run by a fresh Python in an empty folder (as a
    reader would paste them), importing this checkout."""
    parts = []
    for code, mark, line in found:
        compile(code, f"{page.name}:{line}", "exec")  # every block, skipped or not, is valid Python
        if mark == "skip" or (mark == "slow" and not os.environ.get("FLOSIM_SLOW")):
            continue
        parts.append(f"# --- {page.name}, line {line}\n{code}")
    assert parts
    script = tmp_path / f"doc_{page.stem}.py"
    script.write_text("\n".join(parts))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)]), "MPLBACKEND": "Agg"}
    r = subprocess.run([sys.executable, script.name], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, f"{page.name}: {r.stderr[-3000:]}"


def _flosim_commands(code: str) -> list[list[str]]:
    """Each ``flosim ...`` command of a shell block, as argv (continuations joined, comments, pipes and
    redirections dropped)."""
    commands = []
    for raw in code.replace("\\\n", " ").splitlines():
        for part in re.split(r"&&|;|\|\|", raw):
            part = part.strip()
            if not part.startswith("flosim "):
                continue
            words = shlex.split(part, comments=True)
            cut = next((i for i, w in enumerate(words) if w in ("|", ">", ">>", "&", "2>", "2>&1")), len(words))
            commands.append(words[1:cut])
    return commands


@pytest.mark.parametrize("page, found", _cases("bash"))
def test_shell_commands_parse(page, found):
    parser = build_parser()
    checked = 0
    for code, _, line in found:
        for argv in _flosim_commands(code):
            try:
                parser.parse_args(argv)
            except SystemExit as exc:
                pytest.fail(f"{page.name}:{line}: `flosim {shlex.join(argv)}` is refused by the parser ({exc.code})")
            checked += 1
    assert checked >= 1


def _runnable() -> list:
    out = []
    for page in PAGES:
        for kind, code, mark, line in blocks(page):
            if kind == "bash" and mark == "run":
                out.append(pytest.param(code, id=f"{page.relative_to(ROOT)}:{line}"))
    return out


@pytest.mark.parametrize("code", _runnable())
def test_marked_shell_blocks_run(code, tmp_path):
    script = f'flosim() {{ "{sys.executable}" -m experiments.cli "$@"; }}\nset -e\n{code}'
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("page, found", _cases("yaml"))
def test_yaml_blocks_parse(page, found):
    from experiments.sweep import SweepSpec
    from sim.model.validation import load_yaml_text

    for code, _, line in found:
        data = load_yaml_text(code, f"{page.name}:{line}")
        if isinstance(data, dict) and "spec_version" in data:
            SweepSpec.model_validate(data)
