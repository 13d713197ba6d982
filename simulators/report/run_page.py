"""One run's report: its shape, totals, flows, prices, batteries, trades, savings, the
baselines and the optimum, and the feeder's limit events."""

from __future__ import annotations

from typing import Any

from broker.community import Community, Tariff
from simulators.compare import TITLES, ratio_text
from simulators.kpis import gini
from simulators.report.charts import (
    LimitEvent,
    flows_chart,
    kw,
    limit_events,
    money,
    price_chart,
    savings_chart,
    scenario_chart,
    slot_label,
    soc_chart,
    trade_network,
)
from simulators.report.page import details, facts, figure, paragraph, render, section, table
from simulators.report.run_data import RunData
from simulators.results import pct

FLOWS_CAPTION = ("Each slot's energy as its mean power: the households' load and PV summed, the feeder's "
                 "netted import and export, energy traded between peers, batteries and curtailed PV. Dashed "
                 "lines mark limit events.")
PRICES_CAPTION = ("The clearing price of each slot (none where nothing cleared) against the grid's import "
                  "and feed-in prices.")
AUDIT_UNKNOWN = "not recorded with this run (gridmesh ledger audit RUN/ledger.db --replay checks it)"


def tariff_text(tariff: Tariff) -> str:
    base = (f"import {money(tariff.import_u_per_kwh):.4g}, feed-in {money(tariff.feedin_u_per_kwh):.4g} "
            "per kWh")
    if tariff.dynamic:
        return f"dynamic, {len(tariff.dynamic)} price point(s); before them {base}"
    if tariff.time_of_use:
        return f"time of use, {len(tariff.time_of_use)} period(s) in {tariff.timezone}; otherwise {base}"
    return f"flat, {base}"


def limits_text(community: Community) -> str:
    grid = community.grid
    return f"import {grid.import_limit_w / 1000:g} kW, export {grid.export_limit_w / 1000:g} kW"


def run_facts(run: RunData) -> list[tuple[str, object]]:
    """The run's shape, as the header shows it."""
    summary, marker, slots = run.summary, run.marker, run.tables["slots"]
    span = (f"{slot_label(slots[0]['start_s'])} to {slot_label(slots[-1]['start_s'] + run.slot_s)} UTC"
            if slots else "no slots")
    shape: list[tuple[str, object]] = [
        ("households", summary.get("households", len(run.tables["households"]))),
        ("slots", f"{summary.get('slots', len(slots))} of {run.slot_s // 60} min, {span}"),
        ("seed", marker.get("seed", "not recorded")),
    ]
    shape += [(name, marker[name]) for name in ("feeder", "planner", "forecaster") if name in marker]
    ledger = summary.get("head_hash") or "none"
    audit = marker.get("audit")
    market = run.community.market
    return [*shape,
            ("market", f"{market.mechanism}, gate closure {market.gate_closure_s} s"),
            ("tariff", tariff_text(run.community.tariff)),
            ("feeder limits", limits_text(run.community)),
            ("broker", summary.get("broker", "")),
            ("ledger", f"height {summary.get('ledger_height', '?')}, head {ledger}"),
            ("audit", AUDIT_UNKNOWN if audit is None else audit),
            ("written by", f"gridmesh {marker.get('gridmesh', '?')} in {summary.get('wall_s', '?')} s")]


def totals(run: RunData) -> list[tuple[str, object]]:
    s = run.summary
    households = run.tables["households"]
    notrade_gini = gini([row["savings_u"] for row in households])
    return [
        ("trades", f"{s['trades']} ({s['p2p_wh'] / 1000:.1f} kWh between peers)"),
        ("grid import, export",
         f"{s['grid_import_wh'] / 1000:.1f} kWh, {s['grid_export_wh'] / 1000:.1f} kWh"),
        ("community bill", f"{money(s['bill_u']):.2f} (without trading {money(s['notrade_bill_u']):.2f}; "
                           f"savings {s['savings_pct']:.1f} %)"),
        ("baseline bill", f"{money(s['baseline_bill_u']):.2f} with no trading and no battery control; "
                          f"savings {pct(s['baseline_savings_pct'])}"),
        ("self-sufficiency", pct(s["self_sufficiency_pct"])),
        ("self-consumption", pct(s["self_consumption_pct"])),
        ("peaks", f"import {s['peak_import_w'] / 1000:.1f} kW, export {s['peak_export_w'] / 1000:.1f} kW"),
        ("participation", f"{pct(s['participation_pct'])} of members traded"),
        ("Gini of savings", f"{_gini_text(s['gini_savings'])} against the baseline, "
                            f"{_gini_text(notrade_gini)} against no trading"),
        ("limit violations", f"{s['limit_violations']} slot(s)"),
    ]


def _gini_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def run_report(run: RunData) -> str:
    """The whole page for one run."""
    t = run.tables
    grid, slot_s = run.community.grid, run.slot_s
    events = limit_events(t["slots"], t["household_slots"], grid.import_limit_wh(slot_s),
                          grid.export_limit_wh(slot_s))
    charts: dict[str, dict[str, Any]] = {
        "flows": flows_chart(t["slots"], t["household_slots"], slot_s, grid.import_limit_w,
                             grid.export_limit_w, events),
        "prices": price_chart(t["slots"], run.community.tariff),
    }
    sections = [section("The run", facts(run_facts(run)), section_id="run"),
                section("Totals", facts(totals(run)), section_id="totals"),
                section("Energy flows", figure("flows", FLOWS_CAPTION), section_id="flows"),
                section("Prices", figure("prices", PRICES_CAPTION), section_id="prices")]
    soc = soc_chart(t["slots"], t["household_slots"], t["households"])
    if soc["series"]:
        charts["soc"] = soc
        sections.append(section("Batteries", figure("soc", "Each battery's state of charge at the end of "
                                                           "every slot."), section_id="batteries"))
    else:
        sections.append(section("Batteries", paragraph("No household in this run has a battery.")))
    sections.append(_trades_section(run, charts))
    sections.append(_savings_section(run, charts))
    sections.append(_scenarios_section(run, charts))
    sections.append(_limits_section(run, events))
    return render(f"gridmesh run {run.path.name}", f"{run.path}", sections, charts)


def _trades_section(run: RunData, charts: dict[str, dict[str, Any]]) -> str:
    network = trade_network(run.tables["trades"], run.tables["households"])
    if not network["edges"]:
        return section("Trades", paragraph("No member traded with another in this run."), section_id="trades")
    charts["network"] = network
    pairs = sorted(network["edges"], key=lambda e: -e["kwh"])
    rows = [(e["from"], e["to"], e["trades"], f"{e['kwh']:.3f}") for e in pairs]
    return section("Trades", figure("network", "Members who traded, each line from a seller to a buyer, as "
                                    "wide as the energy between them over the run."),
                   details(f"{len(rows)} seller and buyer pair(s)",
                           table(("seller", "buyer", "trades", "kWh"), rows, text_columns=2)),
                   section_id="trades")


def _savings_section(run: RunData, charts: dict[str, dict[str, Any]]) -> str:
    households, kpis = run.tables["households"], {row["household"]: row for row in run.tables["kpis"]}
    charts["savings"] = savings_chart(households, run.tables["kpis"])
    rows = [(h["household"], h["role"], f"{money(h['bill_u']):.4f}", f"{money(h['notrade_bill_u']):.4f}",
             f"{money(h['savings_u']):.4f}", f"{money(kpis[h['household']]['baseline_bill_u']):.4f}"
             if h["household"] in kpis else "", f"{money(kpis[h['household']]['savings_u']):.4f}"
             if h["household"] in kpis else "") for h in households]
    return section("Savings per household",
                   figure("savings", "What each member saved: against the same metered energy billed at grid "
                          "prices with no trading, and against its baseline bill (no trading, no battery "
                          "control). The Gini coefficients in the totals say how unevenly they fell."),
                   details("bills per household", table(
                       ("household", "role", "bill", "no-trade bill", "saved", "baseline bill",
                        "saved against baseline"), rows, text_columns=2)),
                   section_id="savings")


def _scenarios_section(run: RunData, charts: dict[str, dict[str, Any]]) -> str:
    compare = run.folder.compare
    if compare is None:
        return section("Baselines and the optimum", paragraph(
            "This run has no comparison: run the testbed with --compare to add the baselines (no trading; "
            "battery self-consumption without trading) and the community's perfect-foresight optimum."),
            section_id="scenarios")
    charts["scenarios"] = scenario_chart(compare, TITLES)
    rows = [(f"({key}) {TITLES[key]}", f"{money(s['bill_u']):.2f}", f"{s['grid_import_wh'] / 1000:.1f}",
             f"{s['grid_export_wh'] / 1000:.1f}", f"{s['stored_change_wh'] / 1000:+.1f}",
             f"{money(s['valued_bill_u']):.2f}" if "valued_bill_u" in s else "n/a")
            for key, s in compare["scenarios"].items() if key in TITLES]
    text = "efficiency (a - c) / (a - d): " + ratio_text(compare.get("efficiency"))
    if "efficiency_valued" in compare:
        text += (f"; on the bills less the stored energy each scenario gained, valued at the run's last "
                 f"feed-in price ({money(compare.get('stored_price_u_per_kwh', 0)):.3f} per kWh): "
                 f"{ratio_text(compare['efficiency_valued'])}")
    return section("Baselines and the optimum",
                   figure("scenarios", "The community's bill with the same households and data in each "
                          "scenario; over a short run, what the batteries end up holding can matter more "
                          "than the bill, hence the bill less the stored energy gained."),
                   table(("scenario", "bill", "grid import kWh", "grid export kWh", "stored kWh",
                          "bill less stored"), rows),
                   paragraph(text), section_id="scenarios")


def _limits_section(run: RunData, events: list[LimitEvent]) -> str:
    grid, slot_s = run.community.grid, run.slot_s
    intro = paragraph(f"The feeder's limits: {limits_text(run.community)} ("
                      f"{grid.import_limit_wh(slot_s)} Wh and {grid.export_limit_wh(slot_s)} Wh a slot).")
    if not events:
        return section("Feeder limits", intro, paragraph("No slot reached a feeder limit and no PV was "
                                                         "curtailed."), section_id="limits")
    rows = [(slot_label(e.start_s), e.what, e.slot, f"{kw(e.feeder_import_wh, slot_s):.2f}",
             f"{kw(e.feeder_export_wh, slot_s):.2f}", e.curtailed_wh) for e in events]
    return section("Feeder limits", intro,
                   table(("slot start (UTC)", "event", "slot", "import kW", "export kW", "curtailed Wh"),
                         rows, text_columns=2), section_id="limits")
