"""A small real ledger for the ledger tests: a community of three, and signed market traffic.

Keys come from ``Identity.derived`` so every run builds the same chain. Difficulty is
kept low (6 bits) so that mining takes milliseconds.
"""

from __future__ import annotations

from pathlib import Path

from broker.community import Community, LedgerRules, Member
from broker.identity import Identity
from broker.messages import Award, Clearing, MeterReport, Order, Settlement, Step, Trade
from broker.schema import to_dict
from ledger.blocks import Block
from ledger.store import LedgerStore
from ledger.transactions import Transaction
from ledger.writer import LedgerWriter

DIFFICULTY = 6
SLOT_S = 900
FIRST_SLOT = 1_888_000
GENESIS_T_S = FIRST_SLOT * SLOT_S - 3600
COORDINATOR = Identity.derived("coordinator", 1)
MEMBERS = {name: Identity.derived(name, 1) for name in ("h001", "h002", "h003")}


def make_community(difficulty_bits: int = DIFFICULTY) -> Community:
    return Community(
        id="demo",
        coordinator_key=COORDINATOR.public_key_hex,
        ledger=LedgerRules(difficulty_bits=difficulty_bits),
        members=tuple(Member(name, key.public_key_hex) for name, key in MEMBERS.items()),
    )


def gate_s(slot: int) -> int:
    return slot * SLOT_S - 300


def slot_orders(slot: int) -> list[Order]:
    """h001 buys, h002 and h003 sell, each signed by its own key."""
    t_s = gate_s(slot) - 60
    orders = [
        Order("h001", slot, 0, "buy", (Step(800, 250_000), Step(400, 150_000)), t_s),
        Order("h002", slot, 0, "sell", (Step(500, 100_000),), t_s),
        Order("h003", slot, 0, "sell", (Step(300, 120_000),), t_s),
    ]
    return [MEMBERS[o.device].sign(o) for o in orders]


def slot_outcome(slot: int) -> list[Transaction]:
    """The coordinator's clearing and awards for :func:`slot_orders`."""
    t_s = gate_s(slot)
    clearing = Clearing(
        slot=slot, mechanism="uniform", price_u_per_kwh=150_000, buy_wh=1200, sell_wh=800,
        p2p_wh=800, grid_import_wh=400, grid_export_wh=0, orders=3,
        trades=(Trade("h001", "h002", 500, 150_000), Trade("h001", "h003", 300, 150_000),
                Trade("h001", "grid", 400, 150_000)),
        t_s=t_s,
    )
    awards = [
        Award("h001", slot, f"h001:{slot}:0", "buy", "filled", 1200, 1200, 150_000, 180_000, "", t_s),
        Award("h002", slot, f"h002:{slot}:0", "sell", "filled", 500, 500, 150_000, -75_000, "", t_s),
        Award("h003", slot, f"h003:{slot}:0", "sell", "filled", 300, 300, 150_000, -45_000, "", t_s),
    ]
    sign = COORDINATOR.sign
    return [Transaction.from_message("clearing", sign(clearing))] + [
        Transaction.from_message("award", sign(a)) for a in awards
    ]


def slot_settlement(slot: int, now_slot: int) -> list[Transaction]:
    """Meter reports of ``slot`` (signed by the devices) and their settlements."""
    reports = [
        MeterReport("h001", slot, 1250, 0, 10_000 + slot % 1000, 0, (slot + 1) * SLOT_S + 5),
        MeterReport("h002", slot, 0, 480, 0, 20_000, (slot + 1) * SLOT_S + 5),
    ]
    settlements = [
        Settlement("h001", slot, 1200, 1250, 50, 180_000, 15_000, 195_000, 375_000, "", gate_s(now_slot)),
        Settlement("h002", slot, -500, -480, 20, -75_000, 1_600, -73_400, -38_400, "", gate_s(now_slot)),
    ]
    return [Transaction.from_message("report", MEMBERS[r.device].sign(r)) for r in reports] + [
        Transaction.from_message("settlement", COORDINATOR.sign(s)) for s in settlements
    ]


def market_blocks() -> list[tuple[int, int, list[Transaction]]]:
    """(slot, t_s, transactions) for three slots; the third also settles the first."""
    plan = []
    for offset in range(3):
        slot = FIRST_SLOT + offset
        txs = [Transaction.from_message("order", o) for o in slot_orders(slot)] + slot_outcome(slot)
        if offset == 2:
            txs += slot_settlement(FIRST_SLOT, slot)
        plan.append((slot, gate_s(slot), txs))
    return plan


def write_chain(path: Path, difficulty_bits: int = DIFFICULTY) -> list[Block]:
    """Write genesis and three market blocks to ``path`` with the real writer; return them."""
    with LedgerStore(path) as store:
        writer = LedgerWriter(store, COORDINATOR, difficulty_bits)
        writer.genesis(to_dict(make_community(difficulty_bits)), GENESIS_T_S)
        for slot, t_s, txs in market_blocks():
            writer.seal(slot, t_s, txs)
        return list(store.blocks())
