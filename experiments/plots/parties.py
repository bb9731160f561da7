"""Net cost by party: what each party (the retailer and every vendor, by name) bears under each policy.

One group of bars per policy, one bar per party, so a scenario with several vendors shows each of
them; the bars of a policy sum to its social cost (transfers move money between the parties and
cancel; a ``mechanism`` bar appears only when a policy's transfers left the mechanism a balance).
Settled figures (the run plus its cool-down under JIT) when the results hold them, raw otherwise; the
axis says which."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.plots.costs import _subtitle  # noqa: E402
from experiments.plots.data import COST_UNIT, PlotData, party_color  # noqa: E402


def party_cost_column(data: PlotData, party: str) -> tuple[str, str]:
    """The summary column of ``party``'s net cost: ``(settled_net_cost_<party>, "settled")`` when the
    results hold settled figures, else ``(net_cost_<party>, "raw")``; for results written before
    parties had names, the one-vendor columns (``settled_retailer_net_cost``, ``vendor_net_cost`` ...)."""
    s = data.summary
    for col, basis in ((f"settled_net_cost_{party}", "settled"), (f"settled_{party}_net_cost", "settled"),
                       (f"net_cost_{party}", "raw"), (f"{party}_net_cost", "raw")):
        if col in s and s[col].notna().any():
            return col, basis
    return f"net_cost_{party}", "raw"


def plot_net_cost_by_party(data: PlotData) -> "plt.Figure | None":
    """Grouped bars: each party's net cost (mean, 95% CI across replications) by policy."""
    parties = [p for p in data.parties if party_cost_column(data, p)[0] in data.summary]
    if not parties:
        return None
    basis = party_cost_column(data, parties[0])[1]
    policies = [p for p in data.policies if p in set(data.summary.policy)]
    width = 0.8 / len(parties)
    fig, ax = plt.subplots(figsize=(max(5.6, 1.1 * len(policies) * max(2, len(parties)) / 2 + 2.0), 3.8))
    x = np.arange(len(policies))
    for i, party in enumerate(parties):
        col, _ = party_cost_column(data, party)
        stats = data.across(data.summary.dropna(subset=[col]), col, ["policy"]).set_index("policy").reindex(policies)
        err = stats["ci"].to_numpy(dtype=float)
        ax.bar(x + (i - (len(parties) - 1) / 2) * width, stats["mean"].to_numpy(dtype=float), width,
               color=party_color(party, data.parties), label=party,
               yerr=None if np.all(np.isnan(err)) else np.nan_to_num(err), capsize=3, error_kw={"lw": 1})
    ax.set_xticks(x, policies)
    ax.set_xlabel("policy")
    ax.set_ylabel(f"{basis} net cost ({COST_UNIT})")
    ax.axhline(0, color="black", lw=0.6)
    ax.legend(title="party", ncol=min(4, len(parties)), loc="upper center", bbox_to_anchor=(0.5, -0.2))
    ax.set_title(f"Net cost by party (below zero: the party earns)\n{_subtitle(data)}")
    fig.tight_layout()
    return fig
