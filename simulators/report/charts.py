"""One run's rows turned into chart data. Pure: rows in, plain dicts out.

Every chart is a dict the page's script draws (``assets/charts.js``):

- ``lines``: ``x`` (one label a slot) and ``series`` of values (``null`` where there is
  none), each drawn as a ``line``, a ``step`` (held over its slot) or an ``area`` (a line
  filled down to zero); optional ``markers`` (slot indexes with a label) and ``hlines``
  (a level with a label);
- ``bars``: ``categories`` and ``series`` of values, one bar per category and series;
- ``network``: ``nodes`` (members) and ``edges`` (seller to buyer, energy and trades).

Energy per slot is shown as the slot's mean power in kW, money in currency units (the
records hold Wh and micro-units); the numbers here are for plotting only.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from broker.community import Tariff
from broker.units import SECONDS_PER_HOUR, U_PER_UNIT

Row = dict[str, Any]
Chart = dict[str, Any]
LIMIT_SHOWN_UP_TO = 1.5  # draw a feeder limit when it lies within this factor of the flows


def kw(energy_wh: int, slot_s: int) -> float:
    """A slot's energy as its mean power in kW."""
    return round(energy_wh * SECONDS_PER_HOUR / slot_s / 1000, 3)


def money(amount_u: int) -> float:
    return round(amount_u / U_PER_UNIT, 6)


def slot_label(start_s: int) -> str:
    return dt.datetime.fromtimestamp(start_s, dt.UTC).strftime("%Y-%m-%d %H:%M")


def series(name: str, values: Sequence[float | None], style: str = "line") -> dict[str, Any]:
    return {"name": name, "values": list(values), "style": style}


@dataclass(frozen=True)
class LimitEvent:
    """A slot in which the feeder reached a limit or PV was curtailed."""

    index: int  # counted from the run's first slot
    slot: int
    start_s: int
    feeder_import_wh: int
    feeder_export_wh: int
    curtailed_wh: int
    what: str


def community_flows(household_slots: Sequence[Row], slots: Sequence[Row]) -> dict[int, dict[str, int]]:
    """Per slot: the households' load, PV, curtailment, battery charge and discharge summed,
    and the feeder's netted import and export."""
    flows: dict[int, dict[str, int]] = {row["slot"]: defaultdict(int) for row in slots}
    for row in household_slots:
        slot = flows.setdefault(row["slot"], defaultdict(int))
        for name in ("load_wh", "pv_wh", "curtailed_wh", "charge_wh", "discharge_wh"):
            slot[name] += row[name]
    for row in slots:
        flows[row["slot"]]["feeder_import_wh"] = row["feeder_import_wh"]
        flows[row["slot"]]["feeder_export_wh"] = row["feeder_export_wh"]
        flows[row["slot"]]["p2p_wh"] = row["p2p_wh"]
    return flows


def limit_events(slots: Sequence[Row], household_slots: Sequence[Row], import_limit_wh: int,
                 export_limit_wh: int) -> list[LimitEvent]:
    """Slots in which the feeder's import or export was at or over its limit, or PV was curtailed."""
    curtailed: dict[int, int] = defaultdict(int)
    for row in household_slots:
        curtailed[row["slot"]] += row["curtailed_wh"]
    events = []
    for index, row in enumerate(slots):
        imported, exported = row["feeder_import_wh"], row["feeder_export_wh"]
        what = [f"{name} {'over' if energy > limit else 'at'} the limit"
                for name, energy, limit in (("import", imported, import_limit_wh),
                                            ("export", exported, export_limit_wh))
                if energy and energy >= limit]
        if curtailed[row["slot"]]:
            what.append("PV curtailed")
        if what:
            events.append(LimitEvent(index, row["slot"], row["start_s"], imported, exported,
                                     curtailed[row["slot"]], ", ".join(what)))
    return events


def flows_chart(slots: Sequence[Row], household_slots: Sequence[Row], slot_s: int,
                import_limit_w: int, export_limit_w: int, events: Sequence[LimitEvent]) -> Chart:
    flows = community_flows(household_slots, slots)
    order = [row["slot"] for row in slots]

    def of(name: str) -> list[float | None]:
        return [kw(flows[slot][name], slot_s) for slot in order]

    lines = [series("load", of("load_wh"), "area"), series("PV", of("pv_wh"), "area"),
             series("feeder import", of("feeder_import_wh")), series("feeder export", of("feeder_export_wh")),
             series("peer-to-peer", of("p2p_wh")), series("battery charge", of("charge_wh")),
             series("battery discharge", of("discharge_wh")), series("PV curtailed", of("curtailed_wh"))]
    top = max((v for line in lines for v in line["values"] if v is not None), default=0.0)
    hlines = [{"value": limit_w / 1000, "label": f"feeder {name} limit {limit_w / 1000:g} kW"}
              for name, limit_w in (("import", import_limit_w), ("export", export_limit_w))
              if limit_w / 1000 <= LIMIT_SHOWN_UP_TO * top]
    return {"kind": "lines", "title": "Community energy flows", "unit": "kW",
            "x": [slot_label(row["start_s"]) for row in slots], "series": lines, "hlines": hlines,
            "markers": [{"index": e.index, "label": e.what} for e in events]}


def price_chart(slots: Sequence[Row], tariff: Tariff) -> Chart:
    prices = [tariff.at(row["start_s"]) for row in slots]
    return {"kind": "lines", "title": "Clearing price and the grid's tariff", "unit": "per kWh",
            "x": [slot_label(row["start_s"]) for row in slots],
            "series": [series("clearing price", [None if row["price_u_per_kwh"] is None
                                                 else money(row["price_u_per_kwh"]) for row in slots],
                              "step"),
                       series("grid import price", [money(p.import_u_per_kwh) for p in prices], "step"),
                       series("feed-in price", [money(p.feedin_u_per_kwh) for p in prices], "step")],
            "hlines": [], "markers": []}


def soc_chart(slots: Sequence[Row], household_slots: Sequence[Row], households: Sequence[Row]) -> Chart:
    """Each battery's state of charge at the end of every slot."""
    index = {row["slot"]: i for i, row in enumerate(slots)}
    batteries = {row["household"] for row in households if row["battery_wh"] > 0}
    soc: dict[str, list[float | None]] = {}
    for row in household_slots:
        if row["household"] not in batteries or row["soc_end_pct"] is None or row["slot"] not in index:
            continue
        values = soc.setdefault(row["household"], [None] * len(slots))
        values[index[row["slot"]]] = row["soc_end_pct"]
    return {"kind": "lines", "title": "Battery state of charge", "unit": "%",
            "x": [slot_label(row["start_s"]) for row in slots],
            "series": [series(household, values) for household, values in sorted(soc.items())],
            "hlines": [], "markers": []}


def trade_network(trades: Sequence[Row], households: Sequence[Row]) -> Chart:
    """Members who traded as nodes; one edge per seller and buyer, with the energy between them."""
    edges: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    sold: dict[str, int] = defaultdict(int)
    bought: dict[str, int] = defaultdict(int)
    for trade in trades:
        edge = edges[(trade["seller"], trade["buyer"])]
        edge[0] += trade["energy_wh"]
        edge[1] += 1
        sold[trade["seller"]] += trade["energy_wh"]
        bought[trade["buyer"]] += trade["energy_wh"]
    roles = {row["household"]: row["role"] for row in households}
    traders = sorted(set(sold) | set(bought))
    return {"kind": "network", "title": "Trades between members", "unit": "kWh",
            "nodes": [{"id": h, "role": roles.get(h, ""), "sold_kwh": sold[h] / 1000,
                       "bought_kwh": bought[h] / 1000} for h in traders],
            "edges": [{"from": seller, "to": buyer, "kwh": energy / 1000, "trades": count}
                      for (seller, buyer), (energy, count) in sorted(edges.items())]}


def savings_chart(households: Sequence[Row], kpis: Sequence[Row]) -> Chart:
    """Each member's savings against the same metered energy billed with no trading, and
    against its baseline (no trading, no battery control)."""
    baseline = {row["household"]: row["savings_u"] for row in kpis}
    return {"kind": "bars", "title": "Savings per household", "unit": "",
            "categories": [row["household"] for row in households],
            "series": [series("against no trading", [money(row["savings_u"]) for row in households]),
                       series("against the baseline (a)",
                              [money(baseline.get(row["household"], 0)) for row in households])]}


def scenario_chart(compare: dict[str, Any], titles: dict[str, str]) -> Chart:
    scenarios = compare["scenarios"]
    keys = [key for key in titles if key in scenarios]
    bars = [series("bill", [money(scenarios[key]["bill_u"]) for key in keys])]
    if all("valued_bill_u" in scenarios[key] for key in keys):
        bars.append(series("bill less stored energy gained", [money(scenarios[key]["valued_bill_u"])
                                                              for key in keys]))
    return {"kind": "bars", "title": "The community's bill in each scenario", "unit": "",
            "categories": [f"({key}) {titles[key]}" for key in keys], "series": bars}
