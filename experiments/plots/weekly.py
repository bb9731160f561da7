"""Transfers week by week: what each vendor pays (the cost-benefit transfer of CPP-VCG, split-savings'
payment ...) under each mechanism, read from the ledger's ``transfer`` rows.

With one vendor there is one line per policy; with several, one line per policy and vendor (the
policy's colour, a line style per vendor), since each vendor pays its own transfer."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.plots.data import COST_UNIT, PlotData, policy_color  # noqa: E402

LINE_STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P")


def vendor_transfers(data: PlotData):
    """Rows (run, point, replication, policy, week, party, transfer): what each vendor paid each week
    (measured weeks; negative: it received)."""
    led = data.ledger
    vendors = [p for p in data.agents if p != "retailer"]
    rows = led[(led.component == "transfer") & led.party.isin(vendors)]
    keys = ["run", "point", "replication", "policy", "week", "party"]
    return rows.groupby(keys, as_index=False, sort=False)["value"].sum().rename(columns={"value": "transfer"})


def plot_cbt_by_week(data: PlotData) -> "plt.Figure | None":
    """Lines: weekly transfer paid by each vendor, mean across replications with a 95% CI band."""
    if data.ledger.empty or "component" not in data.ledger:
        return None
    t = vendor_transfers(data)
    if t.empty:
        return None
    paying = [p for p in data.policies if p in set(t.policy) and t.loc[t.policy == p, "transfer"].abs().sum() > 0]
    if not paying:
        return None
    vendors = [v for v in data.agents if v in set(t.party)]
    several = len(vendors) > 1
    fig, ax = plt.subplots(figsize=(6.4 if several else 5.6, 3.6 if several else 3.4))
    t = t[t.policy.isin(paying)]
    stats = data.across(t, "transfer", ["policy", "party", "week"])
    for p in paying:
        color = policy_color(p, data.policies)
        for j, v in enumerate(vendors):
            s = stats[(stats.policy == p) & (stats.party == v)].sort_values("week")
            if s.empty:
                continue
            label = f"{p}: {v}" if several else p
            ax.plot(s.week, s["mean"], marker=MARKERS[j % len(MARKERS)], ms=3, ls=LINE_STYLES[j % len(LINE_STYLES)],
                    color=color, label=label)
            if s["ci"].notna().any():
                ax.fill_between(s.week, s["mean"] - s["ci"], s["mean"] + s["ci"], color=color, alpha=0.15, lw=0)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlabel("week")
    ax.set_ylabel(f"transfer paid by {'each vendor' if several else 'vendor'} ({COST_UNIT}/week)")
    weeks = sorted(set(t.week))
    ax.set_xticks(weeks if len(weeks) <= 20 else weeks[:: int(np.ceil(len(weeks) / 20))])
    ax.legend(title="policy: vendor" if several else "policy", ncol=2 if several and len(paying) * len(vendors) > 4 else 1)
    band = "" if data.replications < 2 else "; band: 95% CI across replications"
    ax.set_title(f"{'Transfers' if several else 'Cost-benefit transfer'} by week{band}")
    fig.tight_layout()
    return fig
