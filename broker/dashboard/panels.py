"""What the dashboard shows, as rows and lines of text: one place for the live view, the
playback view and the printed frame (``--print``).

Pure: every function takes a :class:`~broker.dashboard.state.DashboardState` (and the
member filter) and returns text. Money is shown in currency units, prices per kWh,
energy in Wh and power in W or kW.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from broker.dashboard.state import DashboardState, Depth, DeviceView
from broker.units import U_PER_UNIT

DEVICE_COLUMNS = ("device", "role", "state", "grid W", "PV W", "battery W", "SoC %", "award",
                  "curtail Wh", "bill", "rejected")
SHOWN_REJECTIONS = 8


def parse_filter(text: str) -> tuple[str, ...]:
    """The terms of a member filter: words separated by commas or spaces; none shows everyone."""
    return tuple(term for term in text.replace(",", " ").split() if term)


def matches(device: str, terms: Sequence[str]) -> bool:
    """Whether ``device`` passes the filter: its id contains one of the terms."""
    return not terms or any(term in device for term in terms)


def playback_source(label: str, index: int, count: int) -> str:
    """Where a playback frame comes from, for the header: ``playback of RUN: slot 3 of 6``."""
    return f"{label}: slot {index + 1} of {count}"


def header_lines(state: DashboardState, source: str, terms: Sequence[str] = (),
                 paused: bool = False) -> list[str]:
    community = state.community_id or "?"
    slot = state.current_slot
    when = "no time seen yet" if slot is None else f"slot {slot} ({_utc(slot * state.slot_s)})"
    height = "-" if state.ledger_height is None else str(state.ledger_height)
    counts = f"{state.messages} messages"
    if state.undecodable:
        counts += f", {state.undecodable} undecodable (last: {state.last_undecodable})"
    lines = [f"community {community} · {source}",
             f"{when}{' · run ended' if state.ended else ''} · ledger height {height} · {counts}"]
    notes = (["PAUSED: the view is frozen, messages are still taken (p resumes)"] if paused else [])
    if terms:
        notes.append(f"filter: {' '.join(terms)}")
    if notes:
        lines.append(" · ".join(notes))
    return lines


def device_rows(state: DashboardState, terms: Sequence[str] = ()) -> list[tuple[str, ...]]:
    """One row per device that passes the filter, by id; columns as :data:`DEVICE_COLUMNS`.
    A device's award is shown for the last cleared slot only, its bill for the last
    settled slot only: an older one would pass for the present."""
    cleared = state.clearing.slot if state.clearing else None
    settled = state.settled_slot
    return [_device_row(view, cleared, settled) for device, view in sorted(state.devices.items())
            if matches(device, terms)]


def _device_row(view: DeviceView, cleared: int | None, settled: int | None) -> tuple[str, ...]:
    t = view.telemetry
    award = view.award if view.award and view.award.slot == cleared else None
    bill = view.settlement if view.settlement and view.settlement.slot == settled else None
    return (
        view.id, view.role or "-", view.state if view.state != "unknown" else "-",
        _opt(t.grid_power_w if t else None), _opt(t.pv_power_w if t else None),
        _opt(t.battery_power_w if t else None), _opt(t.soc_pct if t else None),
        f"{award.side} {award.status} {award.energy_wh}/{award.ordered_wh} Wh" if award else "-",
        str(award.curtail_wh) if award else "-",
        _money(bill.bill_u) if bill else "-",
        str(view.rejections) if view.rejections else "-",
    )


def market_lines(state: DashboardState, terms: Sequence[str] = ()) -> list[str]:
    """The open (or last) slot's order book and the last clearing."""
    lines: list[str] = []
    book = state.book
    if book is None:
        lines.append("order book   no orders seen yet")
    else:
        chosen = (frozenset(o.device for o in book.orders.values() if matches(o.device, terms))
                  if terms else None)
        whose = " (filtered members' orders)" if terms else ""
        lines.append(f"order book   slot {book.slot} ({'cleared' if book.cleared else 'open'}){whose}: "
                     f"bids {_depth(book.depth('buy', chosen))} · asks {_depth(book.depth('sell', chosen))}")
    clearing = state.clearing
    if clearing is None:
        lines.append("clearing     none seen yet")
    else:
        price = ("no price (nothing matched)" if clearing.price_u_per_kwh is None
                 else f"price {_price(clearing.price_u_per_kwh)}")
        lines.append(f"clearing     slot {clearing.slot} ({clearing.mechanism}): {price} · "
                     f"p2p {clearing.p2p_wh} Wh · {clearing.orders} orders, {len(clearing.trades)} trades")
    settled = state.settled_slot
    if settled is not None:
        bills = [d.settlement for d in state.devices.values()
                 if d.settlement is not None and d.settlement.slot == settled and matches(d.id, terms)]
        lines.append(f"settlement   slot {settled}: bills {_money(sum(b.bill_u for b in bills))} "
                     f"(without trading {_money(sum(b.notrade_bill_u for b in bills))}) "
                     f"of {len(bills)} member{'' if len(bills) == 1 else 's'}")
    return lines


def feeder_lines(state: DashboardState, terms: Sequence[str] = ()) -> list[str]:
    """The feeder's limits and the grid flows against them: cleared, metered and now."""
    community = state.community
    if community is None:
        return ["feeder       limits unknown (give --registry FILE, or wait for the coordinator's "
                "genesis block on the bus)", *_curtailment_lines(state, terms)]
    slot_s = community.market.slot_s
    import_wh, export_wh = community.grid.import_limit_wh(slot_s), community.grid.export_limit_wh(slot_s)
    lines = [f"feeder       limits import {_kw(community.grid.import_limit_w)} ({import_wh} Wh a slot) · "
             f"export {_kw(community.grid.export_limit_w)} ({export_wh} Wh a slot)"]
    if state.clearing is not None:
        c = state.clearing
        lines.append(f"  cleared    slot {c.slot}: import {_of(c.grid_import_wh, import_wh)} · "
                     f"export {_of(c.grid_export_wh, export_wh)}")
    metered = state.last_metered()
    if metered is not None:
        lines.append(f"  metered    slot {metered.slot}: import {_of(metered.import_wh, import_wh)} · "
                     f"export {_of(metered.export_wh, export_wh)} · {len(metered.reports)} reports")
    powers = [d.telemetry.grid_power_w for d in state.devices.values()
              if d.telemetry is not None and d.telemetry.grid_power_w is not None]
    if powers:
        net = sum(powers)
        limit = community.grid.import_limit_w if net >= 0 else community.grid.export_limit_w
        lines.append(f"  now        {_kw(abs(net))} {'import' if net >= 0 else 'export'} "
                     f"({_pct(abs(net), limit)} of its limit) from {len(powers)} devices' telemetry")
    return [*lines, *_curtailment_lines(state, terms)]


def _curtailment_lines(state: DashboardState, terms: Sequence[str]) -> list[str]:
    if state.clearing is None:
        return []
    slot = state.clearing.slot
    held = {d: wh for d, wh in state.curtailment(slot).items() if matches(d, terms)}
    if not held:
        return [f"curtailment  slot {slot}: none"]
    each = ", ".join(f"{d} {wh} Wh" for d, wh in sorted(held.items()))
    return [f"curtailment  slot {slot}: {sum(held.values())} Wh of PV held back ({each})"]


def rejection_lines(state: DashboardState, terms: Sequence[str] = (),
                    shown: int = SHOWN_REJECTIONS) -> list[str]:
    """The newest rejections first, with their reasons."""
    chosen = [r for r in state.rejections if matches(r.device, terms)]
    whose = f", {len(chosen)} recent of the filtered members" if terms else ""
    lines = [f"rejections   {state.rejected_total} in all{whose}"]
    lines.extend(f"  {_clock(r.t_s)} {r.device} {r.kind} {r.ref or '-'}: {r.reason}"
                 for r in reversed(chosen[-shown:]))
    return lines


def render_text(state: DashboardState, source: str, terms: Sequence[str] = ()) -> str:
    """The whole frame as plain text: what ``--print`` writes."""
    table = format_table(DEVICE_COLUMNS, device_rows(state, terms))
    parts = [*header_lines(state, source, terms), "", *table, "", *market_lines(state, terms),
             *feeder_lines(state, terms), *rejection_lines(state, terms)]
    return "\n".join(parts)


def format_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(columns, *rows, strict=False)]
    return ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in (columns, *rows)]


def _depth(depth: Depth) -> str:
    best = "" if depth.best_u_per_kwh is None else f", best {_price(depth.best_u_per_kwh)}"
    return f"{depth.orders} ({depth.energy_wh} Wh{best})"


def _of(energy_wh: int, limit_wh: int) -> str:
    over = " OVER THE LIMIT" if energy_wh > limit_wh else ""
    return f"{energy_wh} Wh ({_pct(energy_wh, limit_wh)}{over})"


def _pct(value: int, limit: int) -> str:
    return f"{100 * value / limit:.1f} %" if limit else "n/a"


def _kw(power_w: int) -> str:
    return f"{power_w / 1000:.1f} kW"


def _price(price_u_per_kwh: int) -> str:
    return f"{price_u_per_kwh / U_PER_UNIT:.3f}/kWh"


def _money(amount_u: int) -> str:
    return f"{amount_u / U_PER_UNIT:.4f}"


def _opt(value: int | None) -> str:
    return "-" if value is None else str(value)


def _utc(t_s: int) -> str:
    return dt.datetime.fromtimestamp(t_s, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _clock(t_s: int) -> str:
    return dt.datetime.fromtimestamp(t_s, dt.UTC).strftime("%H:%M:%S")
