"""A finished run's results: results.db, one CSV per table, and the summary.

Sources: the physics records (what really flowed), the coordinator's database (what
was ordered, cleared and billed), the agents' counters (faults seen, time spent on
Modbus) and the ledger (height and head hash).
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from broker.community import Community
from broker.messages import Clearing, decode
from broker.units import U_PER_UNIT
from simulators.device_farm import StepRecord
from simulators.kpis import KPI_COLUMNS, community_kpis, household_kpis
from simulators.physics import HouseholdSpec

FLOWS = ("load_wh", "pv_wh", "curtailed_wh", "charge_wh", "discharge_wh", "import_wh", "export_wh")
COLUMNS: dict[str, tuple[str, ...]] = {
    "slots": ("slot", "start_s", "price_u_per_kwh", "orders", "p2p_wh", "cleared_import_wh",
              "cleared_export_wh", "feeder_import_wh", "feeder_export_wh", "limit_violation",
              "bill_u", "notrade_bill_u"),
    "households": ("household", "role", "pv_peak_w", "battery_wh", "load_wh", "pv_wh", "import_wh",
                   "export_wh", "bill_u", "notrade_bill_u", "savings_u"),
    "household_slots": ("household", "slot", "start_s", *FLOWS, "soc_end_pct", "battery_remote",
                        "contracted_wh", "metered_wh", "bill_u", "notrade_bill_u"),
    "trades": ("slot", "buyer", "seller", "energy_wh", "price_u_per_kwh"),
    "orders": ("ref", "device", "slot", "kind", "accepted", "reason"),
    "agent_stats": ("household", "name", "value"),
    "kpis": KPI_COLUMNS,
}
TABLES = tuple(COLUMNS)


@dataclass(frozen=True)
class Summary:
    households: int
    slots: int
    orders_accepted: int
    orders_rejected: int
    reports_accepted: int
    reports_rejected: int
    trades: int
    p2p_wh: int
    grid_import_wh: int
    grid_export_wh: int
    limit_violations: int
    bill_u: int
    notrade_bill_u: int
    savings_pct: float
    ledger_height: int
    head_hash: str
    broker: str
    wall_s: float
    device_ms_per_household_slot: float  # the agents' Modbus reads and writes, wall time
    readings_stale: int  # household-slots planned without every device's reading
    baseline_bill_u: int  # no trading, no battery control
    baseline_savings_pct: float | None
    self_sufficiency_pct: float | None
    self_consumption_pct: float | None
    peak_import_w: int
    peak_export_w: int
    participation_pct: float | None
    gini_savings: float | None
    models_switched: int = 0  # agents' switches to forecasters released by federated rounds
    models_refused: int = 0  # releases an agent refused (docs/forecasting.md)

    def lines(self) -> list[str]:
        money = U_PER_UNIT
        rounds = ([f"forecast models   {self.models_switched} switch(es) to released models, "
                   f"{self.models_refused} refused"] if self.models_switched or self.models_refused else [])
        return [
            f"households        {self.households}",
            f"slots             {self.slots}",
            f"orders            {self.orders_accepted} accepted, {self.orders_rejected} rejected",
            f"meter reports     {self.reports_accepted} accepted, {self.reports_rejected} rejected",
            f"trades            {self.trades}",
            f"P2P energy        {self.p2p_wh / 1000:.1f} kWh",
            f"grid import       {self.grid_import_wh / 1000:.1f} kWh",
            f"grid export       {self.grid_export_wh / 1000:.1f} kWh",
            f"limit violations  {self.limit_violations} slot(s)",
            f"community bill    {self.bill_u / money:.2f} (without trading "
            f"{self.notrade_bill_u / money:.2f}; savings {self.savings_pct:.1f} %)",
            f"baseline bill     {self.baseline_bill_u / money:.2f} with no trading and no battery "
            f"control; savings {pct(self.baseline_savings_pct)}",
            f"self-sufficiency  {pct(self.self_sufficiency_pct)}, self-consumption "
            f"{pct(self.self_consumption_pct)}",
            f"peaks             import {self.peak_import_w / 1000:.1f} kW, export "
            f"{self.peak_export_w / 1000:.1f} kW",
            f"participation     {pct(self.participation_pct)} of members traded; Gini of savings "
            f"{'n/a' if self.gini_savings is None else f'{self.gini_savings:.2f}'}",
            *rounds,
            f"ledger            height {self.ledger_height}, head {self.head_hash[:16]}",
            f"device layer      {self.device_ms_per_household_slot:.2f} ms per household-slot, "
            f"{self.readings_stale} stale reading(s)",
            f"broker            {self.broker}",
            f"wall time         {self.wall_s:.1f} s",
        ]


def pct(value: float | None) -> str:
    """A percentage as the summary and the report show it; "n/a" where there is none."""
    return "n/a" if value is None else f"{value:.1f} %"


def _rows(db: sqlite_utils.Database, sql: str) -> list[tuple[Any, ...]]:
    return list(db.execute(sql).fetchall())


def read_agent_stats(folder: Path) -> dict[str, dict[str, int]]:
    """Each agent's counters by device, from the files agents write when they finish."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def build_tables(
    records: list[StepRecord], households: tuple[HouseholdSpec, ...], community: Community,
    coordinator_db: Path, first_slot: int, slots: int, agent_stats: dict[str, dict[str, int]],
    baseline_bills: dict[str, int],
) -> dict[str, list[dict[str, Any]]]:
    slot_s = community.market.slot_s
    run_slots = range(first_slot, first_slot + slots)
    cdb = sqlite_utils.Database(coordinator_db)
    clearings = {s: _msg(Clearing, p) for s, p in _rows(cdb, "SELECT slot, payload FROM clearings")}
    # Per household and slot only a few fields are needed: SQLite's JSON functions read
    # them from the stored payloads without decoding every message in Python.
    contracted = {(s, d): wh for s, d, wh in _rows(
        cdb, "SELECT slot, device, CASE json_extract(payload, '$.side') WHEN 'buy' "
             "THEN json_extract(payload, '$.energy_wh') ELSE -json_extract(payload, '$.energy_wh') "
             "END FROM awards")}
    settlements = {(s, d): (metered, bill, notrade) for s, d, metered, bill, notrade in _rows(
        cdb, "SELECT slot, device, json_extract(payload, '$.metered_wh'), "
             "json_extract(payload, '$.bill_u'), json_extract(payload, '$.notrade_bill_u') "
             "FROM settlements")}
    orders = [
        {"ref": ref, "device": device, "slot": slot, "kind": kind, "accepted": accepted,
         "reason": reason}
        for ref, device, slot, kind, accepted, reason in _rows(
            cdb, "SELECT ref, device, slot, kind, accepted, reason FROM verdicts ORDER BY slot, ref")
        if slot in run_slots
    ]
    cdb.close()

    flows: dict[tuple[str, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    soc_end: dict[tuple[str, int], int] = {}
    remote: dict[tuple[str, int], int | None] = {}
    for record in records:
        slot = record.flows.start_s // slot_s
        if slot not in run_slots:
            continue
        key = (record.household, slot)
        for name in ("load_wh", "pv_wh", "curtailed_wh", "charge_wh", "discharge_wh",
                     "import_wh", "export_wh"):
            flows[key][name] += getattr(record.flows, name)
        soc_end[key] = record.soc_pct
        remote[key] = None if record.battery_remote is None else int(record.battery_remote)

    household_slots: list[dict[str, Any]] = []
    for h in households:
        for slot in run_slots:
            f = flows[(h.id, slot)]
            metered, bill, notrade = settlements.get((slot, h.id), (None, 0, 0))
            household_slots.append({
                "household": h.id, "slot": slot, "start_s": slot * slot_s,
                **{k: f[k] for k in ("load_wh", "pv_wh", "curtailed_wh", "charge_wh",
                                     "discharge_wh", "import_wh", "export_wh")},
                "soc_end_pct": soc_end.get((h.id, slot)),
                "battery_remote": remote.get((h.id, slot)),
                "contracted_wh": contracted.get((slot, h.id), 0),
                "metered_wh": metered, "bill_u": bill, "notrade_bill_u": notrade,
            })

    by_slot: dict[int, list[dict[str, Any]]] = defaultdict(list)
    by_household: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in household_slots:
        by_slot[row["slot"]].append(row)
        by_household[row["household"]].append(row)

    import_limit_wh = community.grid.import_limit_wh(slot_s)
    export_limit_wh = community.grid.export_limit_wh(slot_s)
    slot_rows: list[dict[str, Any]] = []
    trades: list[dict[str, Any]] = []
    for slot in run_slots:
        rows = by_slot[slot]
        net = sum(r["import_wh"] - r["export_wh"] for r in rows)
        clearing = clearings.get(slot)
        slot_rows.append({
            "slot": slot, "start_s": slot * slot_s,
            "price_u_per_kwh": clearing.price_u_per_kwh if clearing else None,
            "orders": clearing.orders if clearing else 0,
            "p2p_wh": clearing.p2p_wh if clearing else 0,
            "cleared_import_wh": clearing.grid_import_wh if clearing else 0,
            "cleared_export_wh": clearing.grid_export_wh if clearing else 0,
            "feeder_import_wh": max(net, 0), "feeder_export_wh": max(-net, 0),
            "limit_violation": int(net > import_limit_wh or -net > export_limit_wh),
            "bill_u": sum(r["bill_u"] for r in rows),
            "notrade_bill_u": sum(r["notrade_bill_u"] for r in rows),
        })
        if clearing:
            trades.extend({"slot": slot, "buyer": t.buyer, "seller": t.seller,
                           "energy_wh": t.energy_wh, "price_u_per_kwh": clearing.price_u_per_kwh}
                          for t in clearing.trades)

    household_rows: list[dict[str, Any]] = []
    for h in households:
        rows = by_household[h.id]
        bill = sum(r["bill_u"] for r in rows)
        notrade = sum(r["notrade_bill_u"] for r in rows)
        household_rows.append({
            "household": h.id, "role": h.role, "pv_peak_w": h.pv_peak_w,
            "battery_wh": h.battery.capacity_wh if h.battery else 0,
            **{k: sum(r[k] for r in rows) for k in ("load_wh", "pv_wh", "import_wh", "export_wh")},
            "bill_u": bill, "notrade_bill_u": notrade, "savings_u": notrade - bill,
        })
    bought: dict[str, int] = defaultdict(int)
    sold: dict[str, int] = defaultdict(int)
    for trade in trades:
        bought[trade["buyer"]] += trade["energy_wh"]
        sold[trade["seller"]] += trade["energy_wh"]
    kpi_rows = [household_kpis(h.id, by_household[h.id], baseline_bills.get(h.id, 0), slot_s,
                               bought[h.id], sold[h.id]) for h in households]
    stats_rows = [{"household": device, "name": name, "value": value}
                  for device, counts in sorted(agent_stats.items()) for name, value in sorted(counts.items())]
    return {"slots": slot_rows, "households": household_rows, "household_slots": household_slots,
            "trades": trades, "orders": orders, "agent_stats": stats_rows, "kpis": kpi_rows}


def write_results(out: Path, tables: dict[str, list[dict[str, Any]]]) -> None:
    db = sqlite_utils.Database(out / "results.db")
    for name in TABLES:
        rows = tables[name]
        if rows:
            db[name].insert_all(rows, replace=True)  # type: ignore[union-attr]
        else:  # an empty table is still there, with its columns, for whoever reads the run
            db.execute(f"CREATE TABLE IF NOT EXISTS [{name}] ({', '.join(f'[{c}]' for c in COLUMNS[name])})")
        with (out / f"{name}.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS[name])  # a header even when empty
            writer.writeheader()
            writer.writerows(rows)
    db.close()


def summarize(
    tables: dict[str, list[dict[str, Any]]], households: int, slots: int,
    ledger_height: int, head_hash: str, broker: str, wall_s: float, slot_s: int = 900,
) -> Summary:
    orders = [o for o in tables["orders"] if o["kind"] == "order"]
    reports = [o for o in tables["orders"] if o["kind"] == "report"]
    slot_rows = tables["slots"]
    bill = sum(r["bill_u"] for r in slot_rows)
    notrade = sum(r["notrade_bill_u"] for r in slot_rows)
    savings = 100.0 * (notrade - bill) / notrade if notrade > 0 else 0.0
    stats: dict[str, int] = defaultdict(int)
    for row in tables["agent_stats"]:
        stats[row["name"]] += row["value"]
    device_ms = stats["device_us"] / 1000 / stats["device_cycles"] if stats["device_cycles"] else 0.0
    members = tables["households"]
    community = community_kpis(tables["kpis"], slot_rows, sum(h["load_wh"] for h in members),
                               sum(h["pv_wh"] for h in members), slot_s)
    return Summary(
        households=households, slots=slots,
        orders_accepted=sum(1 for o in orders if o["accepted"]),
        orders_rejected=sum(1 for o in orders if not o["accepted"]),
        reports_accepted=sum(1 for o in reports if o["accepted"]),
        reports_rejected=sum(1 for o in reports if not o["accepted"]),
        trades=len(tables["trades"]),
        p2p_wh=sum(r["p2p_wh"] for r in slot_rows),
        grid_import_wh=sum(r["feeder_import_wh"] for r in slot_rows),
        grid_export_wh=sum(r["feeder_export_wh"] for r in slot_rows),
        limit_violations=sum(r["limit_violation"] for r in slot_rows),
        bill_u=bill, notrade_bill_u=notrade, savings_pct=round(savings, 2),
        ledger_height=ledger_height, head_hash=head_hash, broker=broker, wall_s=round(wall_s, 2),
        device_ms_per_household_slot=round(device_ms, 3), readings_stale=stats["readings_stale"],
        baseline_bill_u=community["baseline_bill_u"], baseline_savings_pct=community["savings_pct"],
        self_sufficiency_pct=community["self_sufficiency_pct"],
        self_consumption_pct=community["self_consumption_pct"],
        peak_import_w=community["peak_import_w"], peak_export_w=community["peak_export_w"],
        participation_pct=community["participation_pct"], gini_savings=community["gini_savings"],
        models_switched=stats["model_switched"], models_refused=stats["model_refused"],
    )


def write_summary(out: Path, summary: Summary) -> None:
    (out / "summary.json").write_text(json.dumps(asdict(summary), indent=2) + "\n")


def _msg(cls: type[Any], payload: str) -> Any:
    return decode(payload.encode(), cls)
