"""Figure style for papers and saving in several formats.

``paper_style()`` is a context manager with readable fonts, light grids and no top/right spines (it
leaves matplotlib's global settings alone); ``save_figure(fig, out_dir, stem, formats)`` writes
``stem.png`` (200 dpi), ``stem.svg`` and/or ``stem.pdf`` and closes the figure.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FORMATS = ("png", "svg", "pdf")
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100,
    "savefig.bbox": "tight",
    "svg.hashsalt": "flosim",  # reproducible SVG ids
    "pdf.fonttype": 42,  # embed TrueType fonts (editable text in journals' workflows)
}


@contextmanager
def paper_style() -> Iterator[None]:
    with plt.rc_context(STYLE):
        yield


def save_figure(fig: "plt.Figure", out_dir: Path, stem: str, formats: Sequence[str] = ("png",)) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        metadata = {"png": {"Software": "flosim"}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt)
        fig.savefig(path, dpi=200 if fmt == "png" else None, metadata=metadata)
        paths.append(path)
    plt.close(fig)
    return paths


def save_to(fig: "plt.Figure", path: str | Path) -> Path:
    """Write ``fig`` to ``path`` like every flosim figure (:func:`save_figure`), in the format the file
    name's suffix says (png when it has none), and close it."""
    path = Path(path)
    return save_figure(fig, path.parent, path.stem, (path.suffix.lstrip(".") or "png",))[0]
