"""Files flosim writes get the permissions an ordinary ``open``/``mkdir`` would give them.

Results folders and traces are written through ``tempfile`` (readable by the owner only) and then
renamed into place; :func:`publish_mode` gives them the mode the user's umask asks for, so
collaborators on a shared file system can read them the way they read everything else the user writes.
"""

from __future__ import annotations

import os
from pathlib import Path


def current_umask() -> int:
    """The process's file-creation mask (read without changing it where the system allows)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish_mode(path: str | Path, folder: bool = False) -> None:
    """Give a file (or folder) made by ``tempfile`` (readable by its owner only) the permissions an
    ordinary ``open``/``mkdir`` would: 0666 (0777) less the umask, so collaborators on a shared file
    system can read results the way they read everything else the user writes."""
    os.chmod(path, (0o777 if folder else 0o666) & ~current_umask())
