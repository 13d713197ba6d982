"""A small community's bus traffic around one slot, signed as the real parties sign it.

Slot ``SLOT`` has just started: ``SLOT``'s clearing and awards are out (h001 sold 300 of
400 Wh and holds 100 Wh of PV back), orders for ``SLOT + 1`` are in the book (one of
h002's rejected), ``SLOT - 1``'s meter reports and ``SLOT - 2``'s settlements are in,
h003 has gone offline. The feeder's limits are 1000 Wh import and 500 Wh export a slot.
"""

from __future__ import annotations

from broker.community import Community, Member, PowerLimits
from broker.identity import Identity
from broker.messages import (
    Award,
    BlockHeader,
    Clearing,
    ClockTick,
    Message,
    MeterReport,
    Order,
    Result,
    Settlement,
    Status,
    Step,
    Telemetry,
    Trade,
)
from broker.topics import Topics

SLOT_S = 900
SLOT = 1_888_000
T_S = SLOT * SLOT_S  # the slot's start
GATE_S = T_S - 300  # its gate closure
COORDINATOR = Identity.derived("coordinator", 5)
MEMBERS = {name: Identity.derived(name, 5) for name in ("h001", "h002", "h003")}
TOPICS = Topics("demo")
REJECTED_REF = f"h002:{SLOT + 1}:1"
REJECTION = "energy 9000 Wh exceeds the connection import limit of 5000 Wh per slot"


def community() -> Community:
    return Community(
        id="demo", coordinator_key=COORDINATOR.public_key_hex,
        grid=PowerLimits(import_limit_w=4000, export_limit_w=2000),
        members=tuple(Member(name, key.public_key_hex, role="prosumer" if name == "h001" else "consumer")
                      for name, key in MEMBERS.items()),
    )


def _member(msg: Order | MeterReport) -> Message:
    return MEMBERS[msg.device].sign(msg)


def presence() -> list[tuple[str, Message]]:
    """Who is there (retained on the bus)."""
    return [(TOPICS.device(name, "status"), Status(name, state, T_S - 5000))
            for name, state in (("h001", "online"), ("h002", "online"), ("h003", "offline"),
                                ("coordinator", "online"))]


def before_gate() -> list[tuple[str, Message]]:
    """The clock at the slot's start, telemetry, and the orders for the next slot."""
    orders = [Order("h001", SLOT + 1, 0, "sell", (Step(400, 80_001),), T_S + 5),
              Order("h002", SLOT + 1, 0, "buy", (Step(250, 299_999), Step(50, 200_000)), T_S + 5),
              Order("h002", SLOT + 1, 1, "buy", (Step(9000, 299_999),), T_S + 6)]
    return [
        (TOPICS.tick, ClockTick(7, T_S)),
        (TOPICS.device("h001", "telemetry"), Telemetry("h001", T_S, -1500, 2500, -500, 60)),
        (TOPICS.device("h002", "telemetry"), Telemetry("h002", T_S, 800, None, None, None)),
        *((TOPICS.device(o.device, "order"), _member(o)) for o in orders),
        (TOPICS.device("h002", "result"),
         COORDINATOR.sign(Result("h002", REJECTED_REF, "order", "rejected", REJECTION, T_S + 6))),
    ]


def gate() -> list[tuple[str, Message]]:
    """``SLOT``'s clearing and awards, reports and settlements, and the block that seals them."""
    sign = COORDINATOR.sign
    clearing = Clearing(SLOT, "uniform", 190_000, 1000, 400, 300, 700, 0, 2,
                        (Trade("h002", "h001", 300, 190_000), Trade("h002", "grid", 700, 190_000)), GATE_S)
    awards = [Award("h001", SLOT, f"h001:{SLOT}:0", "sell", "partial", 400, 300, 190_000, -57_000, "",
                    GATE_S, curtail_wh=100, p2p_wh=300),
              Award("h002", SLOT, f"h002:{SLOT}:0", "buy", "filled", 1000, 1000, 190_000, 190_000, "",
                    GATE_S, p2p_wh=300)]
    reports = [MeterReport("h001", SLOT - 1, 0, 600, 5000, 9000, T_S - 1),
               MeterReport("h002", SLOT - 1, 1200, 0, 8000, 0, T_S - 1)]
    settlements = [Settlement("h001", SLOT - 2, -300, -310, -10, -57_000, 0, -57_800, -24_800, "", GATE_S),
                   Settlement("h002", SLOT - 2, 1000, 990, -10, 190_000, 0, 187_000, 297_000, "", GATE_S)]
    header = BlockHeader(41, "0" * 64, "1" * 64, SLOT, GATE_S, 6, 123, 9)
    return [
        (TOPICS.clearing, sign(clearing)),
        *((TOPICS.device(a.device, "award"), sign(a)) for a in awards),
        *((TOPICS.device(r.device, "report"), _member(r)) for r in reports),
        *((TOPICS.device(s.device, "settlement"), sign(s)) for s in settlements),
        (TOPICS.block, sign(header)),
    ]


def everything() -> list[tuple[str, Message]]:
    return [*presence(), *before_gate(), *gate()]
