"""Two runs side by side: what differs between them, their totals, bills and savings, the
feeder's flows overlaid and the households' differences. Runs of other shapes are compared
where they can be: households by id where both have them, slots by time when both start
together and otherwise by position from each run's first slot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from broker.schema import to_dict
from simulators.compare import TITLES
from simulators.report.charts import kw, money, series, slot_label
from simulators.report.page import details, esc, facts, figure, paragraph, render, section, table
from simulators.report.run_data import RunData
from simulators.report.run_page import limits_text, tariff_text

Chart = dict[str, Any]
SPEC = ("role", "pv_peak_w", "battery_wh")


def names(a: RunData, b: RunData) -> tuple[str, str]:
    if a.path.name == b.path.name:
        return "A", "B"
    return f"A ({a.path.name})", f"B ({b.path.name})"


def differences(a: RunData, b: RunData) -> list[str]:
    """What differs between the two runs, one sentence each; an empty list when nothing does."""
    out: list[str] = []
    sa, sb = a.summary, b.summary
    for what, va, vb in (("households", sa.get("households"), sb.get("households")),
                         ("slots", sa.get("slots"), sb.get("slots"))):
        if va != vb:
            out.append(f"{what}: A has {va}, B {vb}")
    if (a.first_slot, a.slot_s) != (b.first_slot, b.slot_s):
        out.append(f"start and slot length: A from {_start(a)}, B from {_start(b)}; flows are overlaid from "
                   "each run's first slot")
    for key in ("seed", "feeder", "planner", "forecaster"):
        va, vb = a.marker.get(key), b.marker.get(key)
        if va != vb:
            out.append(f"{key}: A {_or_unknown(va)}, B {_or_unknown(vb)}")
    ca, cb = a.community, b.community
    if to_dict(ca.tariff) != to_dict(cb.tariff):
        out.append(f"tariff: A {tariff_text(ca.tariff)}; B {tariff_text(cb.tariff)}")
    if ca.grid != cb.grid:
        out.append(f"feeder limits: A {limits_text(ca)}; B {limits_text(cb)}")
    for part in ("market", "fees", "rules"):
        if getattr(ca, part) != getattr(cb, part):
            out.append(f"the community's {part}: A {to_dict(getattr(ca, part))}; "
                       f"B {to_dict(getattr(cb, part))}")
    common, only_a, only_b = _household_sets(a, b)
    if only_a or only_b:
        out.append(f"households in one run only: {_listed(only_a)} in A, {_listed(only_b)} in B; "
                   f"per-household figures compare the {len(common)} in both")
    homes_a, homes_b = _by_household(a, "households"), _by_household(b, "households")
    unlike = [h for h in common if any(homes_a[h][k] != homes_b[h][k] for k in SPEC)]
    if unlike:
        out.append(f"{_listed(unlike)}: other homes under the same id (role, PV or battery differ)")
    if (a.folder.compare is None) != (b.folder.compare is None):
        out.append(f"only {'A' if b.folder.compare is None else 'B'} ran --compare: the scenarios are not "
                   "compared")
    return out


def _start(run: RunData) -> str:
    return "no slots" if run.first_slot is None else f"{slot_label(run.first_slot * run.slot_s)} UTC, " \
        f"{run.slot_s // 60}-min slots"


def _or_unknown(value: object) -> str:
    return "not recorded" if value is None else str(value)


def _listed(ids: list[str], most: int = 8) -> str:
    if not ids:
        return "none"
    return ", ".join(ids[:most]) + (f" and {len(ids) - most} more" if len(ids) > most else "")


def _by_household(run: RunData, table_name: str) -> dict[str, dict[str, Any]]:
    return {row["household"]: row for row in run.tables[table_name]}


def _household_sets(a: RunData, b: RunData) -> tuple[list[str], list[str], list[str]]:
    ids_a, ids_b = set(_by_household(a, "households")), set(_by_household(b, "households"))
    return sorted(ids_a & ids_b), sorted(ids_a - ids_b), sorted(ids_b - ids_a)


TOTALS: tuple[tuple[str, Callable[[dict[str, Any]], float | None], str], ...] = (
    ("households", lambda s: s["households"], "{:.0f}"),
    ("slots", lambda s: s["slots"], "{:.0f}"),
    ("trades", lambda s: s["trades"], "{:.0f}"),
    ("peer-to-peer energy, kWh", lambda s: s["p2p_wh"] / 1000, "{:.1f}"),
    ("grid import, kWh", lambda s: s["grid_import_wh"] / 1000, "{:.1f}"),
    ("grid export, kWh", lambda s: s["grid_export_wh"] / 1000, "{:.1f}"),
    ("community bill", lambda s: money(s["bill_u"]), "{:.2f}"),
    ("bill without trading", lambda s: money(s["notrade_bill_u"]), "{:.2f}"),
    ("savings against no trading, %", lambda s: s["savings_pct"], "{:.1f}"),
    ("baseline bill", lambda s: money(s["baseline_bill_u"]), "{:.2f}"),
    ("savings against the baseline, %", lambda s: s["baseline_savings_pct"], "{:.1f}"),
    ("self-sufficiency, %", lambda s: s["self_sufficiency_pct"], "{:.1f}"),
    ("self-consumption, %", lambda s: s["self_consumption_pct"], "{:.1f}"),
    ("peak import, kW", lambda s: s["peak_import_w"] / 1000, "{:.1f}"),
    ("peak export, kW", lambda s: s["peak_export_w"] / 1000, "{:.1f}"),
    ("participation, %", lambda s: s["participation_pct"], "{:.1f}"),
    ("Gini of savings", lambda s: s["gini_savings"], "{:.2f}"),
    ("limit violations, slots", lambda s: s["limit_violations"], "{:.0f}"),
)


def totals_rows(a: RunData, b: RunData) -> list[tuple[str, str, str, str]]:
    rows = []
    for label, get, form in TOTALS:
        va, vb = get(a.summary), get(b.summary)
        diff = "" if va is None or vb is None else ("+" if vb >= va else "") + form.format(vb - va)
        rows.append((label, _shown(va, form), _shown(vb, form), diff))
    for key, label in (("efficiency", "efficiency (a - c) / (a - d)"),
                       ("efficiency_valued", "efficiency on bills less stored energy gained")):
        ea, eb = (run.folder.compare.get(key) if run.folder.compare else None for run in (a, b))
        if ea is not None and eb is not None:
            rows.append((label, f"{ea:.3f}", f"{eb:.3f}", f"{eb - ea:+.3f}"))
    return rows


def _shown(value: float | None, form: str) -> str:
    return "n/a" if value is None else form.format(value)


def flows_overlaid(a: RunData, b: RunData) -> Chart:
    """The feeder's import and export and the peers' energy per slot, both runs on one axis."""
    slots_a, slots_b = a.tables["slots"], b.tables["slots"]
    n = max(len(slots_a), len(slots_b))
    together = (a.first_slot, a.slot_s) == (b.first_slot, b.slot_s)
    longer = slots_a if len(slots_a) >= len(slots_b) else slots_b
    x = [slot_label(row["start_s"]) for row in longer] if together else [f"slot {i + 1}" for i in range(n)]
    name_a, name_b = names(a, b)
    lines = []
    quantities = (("feeder_import_wh", "feeder import"), ("feeder_export_wh", "feeder export"),
                  ("p2p_wh", "peer-to-peer"))
    for colour, (column, label) in enumerate(quantities):
        for name, run, rows in ((name_a, a, slots_a), (name_b, b, slots_b)):
            values: list[float | None] = [kw(row[column], run.slot_s) for row in rows]
            line = series(f"{label}, {name}", values + [None] * (n - len(values)))
            lines.append({**line, "color": colour, "dashed": run is b})  # B dashed in A's colour
    return {"kind": "lines", "title": "Feeder flows, both runs", "unit": "kW", "x": x, "series": lines,
            "hlines": [], "markers": []}


def bills_chart(a: RunData, b: RunData) -> Chart:
    name_a, name_b = names(a, b)
    keys = (("community bill", "bill_u"), ("without trading", "notrade_bill_u"),
            ("baseline", "baseline_bill_u"))
    return {"kind": "bars", "title": "Bills", "unit": "", "categories": [label for label, _ in keys],
            "series": [series(name, [money(run.summary[key]) for _, key in keys])
                       for name, run in ((name_a, a), (name_b, b))]}


def household_rows(a: RunData, b: RunData) -> list[dict[str, Any]]:
    """Each household both runs have: bills, savings against no trading and against the baseline."""
    common = _household_sets(a, b)[0]
    ha, hb = _by_household(a, "households"), _by_household(b, "households")
    ka, kb = _by_household(a, "kpis"), _by_household(b, "kpis")
    return [{"household": h, "bill_a_u": ha[h]["bill_u"], "bill_b_u": hb[h]["bill_u"],
             "saved_a_u": ha[h]["savings_u"], "saved_b_u": hb[h]["savings_u"],
             "baseline_saved_a_u": ka.get(h, {}).get("savings_u"),
             "baseline_saved_b_u": kb.get(h, {}).get("savings_u"),
             "same_home": all(ha[h][k] == hb[h][k] for k in SPEC)} for h in common]


def households_chart(rows: list[dict[str, Any]], name_a: str, name_b: str) -> Chart:
    return {"kind": "bars", "title": "Savings against no trading, per household", "unit": "",
            "categories": [r["household"] for r in rows],
            "series": [series(name_a, [money(r["saved_a_u"]) for r in rows]),
                       series(name_b, [money(r["saved_b_u"]) for r in rows])]}


def comparison_report(a: RunData, b: RunData) -> str:
    name_a, name_b = names(a, b)
    changes = differences(a, b)
    what = ("<ul class=\"changes\">" + "".join(f"<li>{esc(c)}</li>" for c in changes) + "</ul>"
            if changes else paragraph("The runs have the same shape, community rules and households."))
    rows = household_rows(a, b)
    charts: dict[str, Chart] = {"bills": bills_chart(a, b), "flows": flows_overlaid(a, b)}
    sections = [section("The runs", facts([(name_a, str(a.path)), (name_b, str(b.path))]),
                        section_id="runs"),
                section("What differs", what, section_id="differences"),
                section("Totals", table(("", name_a, name_b, "B − A"), totals_rows(a, b)),
                        figure("bills", "The community's bill in each run, without trading and at its "
                                        "baseline (no trading, no battery control)."), section_id="totals"),
                section("Feeder flows", figure("flows", "Each slot's feeder import and export and the energy "
                                               "traded between peers, as mean power, in both runs."),
                        section_id="flows")]
    if rows:
        charts["households"] = households_chart(rows, name_a, name_b)
        table_rows = [(r["household"], "" if r["same_home"] else "other home", f"{money(r['bill_a_u']):.4f}",
                       f"{money(r['bill_b_u']):.4f}", f"{money(r['bill_b_u'] - r['bill_a_u']):+.4f}",
                       f"{money(r['saved_a_u']):.4f}", f"{money(r['saved_b_u']):.4f}") for r in rows]
        sections.append(section(
            "Households", figure("households", "What each household in both runs saved against no trading."),
            details(f"bills of the {len(rows)} household(s) in both runs",
                    table(("household", "", f"bill {name_a}", f"bill {name_b}", "B − A", f"saved {name_a}",
                           f"saved {name_b}"), table_rows, text_columns=2)), section_id="households"))
    else:
        sections.append(section("Households", paragraph("No household id is in both runs."),
                                section_id="households"))
    if a.folder.compare and b.folder.compare:
        charts["scenarios"] = _scenarios_chart(a.folder.compare, b.folder.compare, name_a, name_b)
        sections.append(section("Baselines and the optimum", figure(
            "scenarios", "The community's bill in each scenario of --compare, both runs."),
            section_id="scenarios"))
    return render(f"gridmesh runs compared: {a.path.name} and {b.path.name}", f"{a.path} and {b.path}",
                  sections, charts)


def _scenarios_chart(ca: dict[str, Any], cb: dict[str, Any], name_a: str, name_b: str) -> Chart:
    keys = [key for key in TITLES if key in ca["scenarios"] and key in cb["scenarios"]]
    return {"kind": "bars", "title": "Bills by scenario", "unit": "",
            "categories": [f"({key}) {TITLES[key]}" for key in keys],
            "series": [series(name, [money(c["scenarios"][key]["bill_u"]) for key in keys])
                       for name, c in ((name_a, ca), (name_b, cb))]}
