"""Regenerate the stored pilot summaries the tests compare against (run from the repository root):

    python tests/data/make_pilot_golden.py            # the shortened replay tests/test_replay.py checks
    python tests/data/make_pilot_golden.py --full     # also the full nine-week replay (a benchmark)

Each file is ``flosim replay pilot [--weeks N] --json`` without its ``results_dir``. Regenerate after a
deliberate change to a policy, the world or the pilot trace, and say why in the commit message.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHORT_WEEKS = 2
# run as a script, import this checkout's code (not an installed copy elsewhere)
if str(HERE.parents[1]) not in sys.path:
    sys.path.insert(1, str(HERE.parents[1]))


def golden_path(weeks: int | None) -> Path:
    return HERE / ("pilot_replay_full.json" if weeks is None else f"pilot_replay_{weeks}w.json")


def replay_summary(weeks: int | None) -> dict:
    from experiments.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        argv = ["replay", "pilot", "--json", "--out", str(Path(tmp) / "out")]
        if weeks is not None:
            argv += ["--weeks", str(weeks)]
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            status = main(argv)
        if status != 0:
            raise SystemExit(f"flosim {' '.join(argv)} exited {status}")
    summary = json.loads(buf.getvalue())
    summary.pop("results_dir", None)
    return summary


def write(weeks: int | None) -> None:
    started = time.perf_counter()
    summary = replay_summary(weeks)
    path = golden_path(weeks)
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    print(f"wrote {path} ({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    write(SHORT_WEEKS)
    if "--full" in sys.argv[1:]:
        write(None)
