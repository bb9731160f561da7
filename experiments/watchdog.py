"""Moved to :mod:`sim.watchdog` (the simulation's own process pool uses it too); kept importable here."""

from sim.watchdog import ORPHAN_EXIT, WatchParentPlugin, alive, parent_identity, watch_parent

__all__ = ["ORPHAN_EXIT", "WatchParentPlugin", "alive", "parent_identity", "watch_parent"]
