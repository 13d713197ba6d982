"""Key figures of a run, per household and for the community. Pure.

- **bill** and **savings**: what the member paid, and how much less that is than the
  same household with no trading and no battery control (its baseline bill);
- **self-sufficiency**: the share of the load not drawn from the grid,
  ``1 - import / load`` (a household's meter import includes what it bought from peers:
  that too came over the grid's wires); for the community, the feeder's import;
- **self-consumption**: the share of PV not fed out, ``1 - export / pv``;
- **peak import and export**: the largest slot's mean power, in W;
- **P2P volume and participation**: energy bought and sold between members, and the
  share of members that traded at all;
- **Gini coefficient of savings**: how unevenly the savings fell,
  ``sum |s_i - s_j| / (2 n^2 |mean s|)``: 0 when everyone saved the same; above 1 is
  possible when some lose while others gain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from broker.units import SECONDS_PER_HOUR

KPI_COLUMNS = ("household", "bill_u", "baseline_bill_u", "savings_u", "self_sufficiency_pct",
               "self_consumption_pct", "peak_import_w", "peak_export_w", "p2p_bought_wh", "p2p_sold_wh")


def share_pct(part: int, whole: int) -> float | None:
    """``100 * (1 - part / whole)``, rounded to 0.1; None when there is nothing to share."""
    return None if whole <= 0 else round(100.0 * (1 - part / whole), 1)


def gini(values: Sequence[float]) -> float | None:
    """The Gini coefficient of ``values``; None for none, or when their mean is 0."""
    n = len(values)
    mean = sum(values) / n if n else 0.0
    if not n or mean == 0:
        return None
    ordered = sorted(values)
    # sum over pairs of |x_i - x_j| = 2 * sum_i (2i - n + 1) x_(i) for sorted x
    spread = 2 * sum((2 * i - n + 1) * x for i, x in enumerate(ordered))
    return round(spread / (2 * n * n * abs(mean)), 4)


def household_kpis(
    household: str, slots: Iterable[Mapping[str, Any]], baseline_bill_u: int, slot_s: int,
    p2p_bought_wh: int, p2p_sold_wh: int,
) -> dict[str, Any]:
    """One member's figures from its ``household_slots`` rows."""
    rows = list(slots)
    load = sum(r["load_wh"] for r in rows)
    pv = sum(r["pv_wh"] for r in rows)
    imported = sum(r["import_wh"] for r in rows)
    exported = sum(r["export_wh"] for r in rows)
    bill = sum(r["bill_u"] for r in rows)
    return {
        "household": household, "bill_u": bill, "baseline_bill_u": baseline_bill_u,
        "savings_u": baseline_bill_u - bill,
        "self_sufficiency_pct": share_pct(imported, load), "self_consumption_pct": share_pct(exported, pv),
        "peak_import_w": max((r["import_wh"] for r in rows), default=0) * SECONDS_PER_HOUR // slot_s,
        "peak_export_w": max((r["export_wh"] for r in rows), default=0) * SECONDS_PER_HOUR // slot_s,
        "p2p_bought_wh": p2p_bought_wh, "p2p_sold_wh": p2p_sold_wh,
    }


def community_kpis(
    households: Sequence[Mapping[str, Any]], slots: Sequence[Mapping[str, Any]], load_wh: int, pv_wh: int,
    slot_s: int,
) -> dict[str, Any]:
    """The community's figures from its members' KPI rows and the run's ``slots`` rows."""
    feeder_import = sum(s["feeder_import_wh"] for s in slots)
    feeder_export = sum(s["feeder_export_wh"] for s in slots)
    traders = [h for h in households if h["p2p_bought_wh"] or h["p2p_sold_wh"]]
    bill = sum(h["bill_u"] for h in households)
    baseline = sum(h["baseline_bill_u"] for h in households)
    return {
        "bill_u": bill, "baseline_bill_u": baseline,
        "savings_pct": round(100.0 * (baseline - bill) / baseline, 2) if baseline > 0 else None,
        "self_sufficiency_pct": share_pct(feeder_import, load_wh),
        "self_consumption_pct": share_pct(feeder_export, pv_wh),
        "peak_import_w": max((s["feeder_import_wh"] for s in slots), default=0) * SECONDS_PER_HOUR // slot_s,
        "peak_export_w": max((s["feeder_export_wh"] for s in slots), default=0) * SECONDS_PER_HOUR // slot_s,
        "p2p_wh": sum(s["p2p_wh"] for s in slots),
        "participation_pct": round(100.0 * len(traders) / len(households), 1) if households else None,
        "gini_savings": gini([h["savings_u"] for h in households]),
    }
