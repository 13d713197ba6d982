"""What the dashboard knows of a community, built message by message.

Pure: :func:`apply` takes a state and one decoded bus message and returns the next
state; nothing is changed in place, so a state can be kept as a frame (playback keeps
one per slot) while the next one is built. Messages may arrive in any order across
topics (a rejection before the order it refuses, a clearing before its last award):
each one only adds what it says.

The state keeps the devices (presence, last telemetry, award and settlement), the
order books and metered reports of the last :data:`KEEP_SLOTS` slots, the last
clearing, the ledger's height and the last :data:`KEEP_REJECTIONS` rejections.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from broker.codec import PayloadError, parse_json_object
from broker.community import Community
from broker.messages import (
    Award,
    BlockData,
    BlockHeader,
    Clearing,
    ClockTick,
    Message,
    MeterReport,
    Order,
    Result,
    Settlement,
    Status,
    Telemetry,
)
from broker.schema import SchemaError, from_dict

KEEP_SLOTS = 8
KEEP_REJECTIONS = 50
DEFAULT_SLOT_S = 900  # until the community's rules are known
T = TypeVar("T")


@dataclass(frozen=True)
class DeviceView:
    """One device as last heard of. ``state`` is ``unknown`` until its status is seen."""

    id: str
    role: str = ""  # from the registry: prosumer, consumer, ...; coordinator; "" when not known
    state: str = "unknown"
    telemetry: Telemetry | None = None
    award: Award | None = None
    settlement: Settlement | None = None
    rejections: int = 0


@dataclass(frozen=True)
class Depth:
    """One side of an order book: how many orders, their energy and the best price."""

    orders: int
    energy_wh: int
    best_u_per_kwh: int | None


@dataclass(frozen=True)
class Book:
    """The orders seen for one slot, less those the coordinator rejected."""

    slot: int
    orders: Mapping[str, Order] = field(default_factory=dict)  # by order id
    rejected: frozenset[str] = frozenset()
    cleared: bool = False

    def depth(self, side: str, devices: frozenset[str] | None = None) -> Depth:
        """Bids (``buy``) or asks (``sell``), of ``devices`` only when given."""
        chosen = [o for o in self.orders.values()
                  if o.side == side and (devices is None or o.device in devices)]
        prices = [step.price_u_per_kwh for o in chosen for step in o.steps]
        best = (max(prices) if side == "buy" else min(prices)) if prices else None
        return Depth(len(chosen), sum(o.energy_wh for o in chosen), best)


@dataclass(frozen=True)
class Metered:
    """The meter reports of one slot: what really flowed over the feeder."""

    slot: int
    reports: Mapping[str, MeterReport] = field(default_factory=dict)  # by device

    @property
    def net_wh(self) -> int:
        """Positive when the community imported over the slot."""
        return sum(r.net_wh for r in self.reports.values())

    @property
    def import_wh(self) -> int:
        return max(self.net_wh, 0)

    @property
    def export_wh(self) -> int:
        return max(-self.net_wh, 0)


@dataclass(frozen=True)
class Rejection:
    device: str
    kind: str  # order, report, payload, share
    ref: str
    reason: str
    t_s: int


@dataclass(frozen=True)
class DashboardState:
    community: Community | None = None  # the rules and registry, once known
    community_id: str | None = None  # the community watched, known before its rules may be
    clock_s: int | None = None  # the last clock tick's time
    seen_s: int | None = None  # the latest time in market traffic (for wall-clock communities)
    ended: bool = False  # the clock's last tick was seen
    devices: Mapping[str, DeviceView] = field(default_factory=dict)
    books: Mapping[int, Book] = field(default_factory=dict)
    metered: Mapping[int, Metered] = field(default_factory=dict)
    clearing: Clearing | None = None
    ledger_height: int | None = None
    rejections: tuple[Rejection, ...] = ()  # the newest last
    rejected_total: int = 0
    undecodable: int = 0
    last_undecodable: str = ""
    messages: int = 0

    @property
    def slot_s(self) -> int:
        return self.community.market.slot_s if self.community else DEFAULT_SLOT_S

    @property
    def now_s(self) -> int | None:
        """The community's time: its clock's if it has one on the bus, else its traffic's."""
        return self.clock_s if self.clock_s is not None else self.seen_s

    @property
    def current_slot(self) -> int | None:
        now = self.now_s
        return None if now is None else now // self.slot_s

    @property
    def book(self) -> Book | None:
        """The book to show: the latest slot that has orders (open until its clearing)."""
        return self.books[max(self.books)] if self.books else None

    def last_metered(self) -> Metered | None:
        return self.metered[max(self.metered)] if self.metered else None

    @property
    def settled_slot(self) -> int | None:
        """The newest slot any member's settlement is for."""
        return max((d.settlement.slot for d in self.devices.values() if d.settlement), default=None)

    def curtailment(self, slot: int) -> dict[str, int]:
        """PV each device was asked to hold back in ``slot`` (devices asked for none left out)."""
        return {d.id: d.award.curtail_wh for d in self.devices.values()
                if d.award is not None and d.award.slot == slot and d.award.curtail_wh}


def for_community(community: Community | None, community_id: str | None = None) -> DashboardState:
    """The state before any message: the registry's members, not yet heard of (or, without
    a registry, just the community's id)."""
    empty = DashboardState(community_id=community.id if community else community_id)
    return _with_community(empty, community) if community else empty


def apply(state: DashboardState, msg: Message) -> DashboardState:
    """The state after ``msg``."""
    state = replace(state, messages=state.messages + 1)
    handler = _HANDLERS.get(type(msg))
    return handler(state, msg) if handler else state


@dataclass(frozen=True)
class Undecodable:
    """A payload on ``topic`` that is no gridmesh message, and why."""

    topic: str
    reason: str


FeedItem = Message | Undecodable


def take(state: DashboardState, item: FeedItem) -> DashboardState:
    """The state after what a feed brought: a message, or a payload that did not decode
    (counted, and the last one's reason kept)."""
    if isinstance(item, Undecodable):
        return replace(state, messages=state.messages + 1, undecodable=state.undecodable + 1,
                       last_undecodable=f"{item.topic}: {item.reason}")
    return apply(state, item)


def _with_community(state: DashboardState, community: Community) -> DashboardState:
    """Take ``community``'s rules and members."""
    devices = dict(state.devices)
    roles = {m.id: m.role for m in community.members} | {community.coordinator_id: "coordinator"}
    for device, role in roles.items():
        devices[device] = replace(devices.get(device, DeviceView(device)), role=role)
    return replace(state, community=community, community_id=community.id, devices=devices)


def _view(state: DashboardState, device: str) -> DeviceView:
    return state.devices.get(device) or DeviceView(device)


def _put(state: DashboardState, view: DeviceView) -> DashboardState:
    return replace(state, devices={**state.devices, view.id: view})


def _seen(state: DashboardState, t_s: int) -> DashboardState:
    return state if state.seen_s is not None and state.seen_s >= t_s else replace(state, seen_s=t_s)


def _keep_newest(items: Mapping[int, T]) -> dict[int, T]:
    return {slot: items[slot] for slot in sorted(items)[-KEEP_SLOTS:]}


def _put_book(state: DashboardState, book: Book) -> DashboardState:
    return replace(state, books=_keep_newest({**state.books, book.slot: book}))


def _slot_book(state: DashboardState, slot: int) -> Book:
    return state.books.get(slot) or Book(slot)


def _status(state: DashboardState, msg: Status) -> DashboardState:
    return _put(state, replace(_view(state, msg.device), state=msg.state))


def _telemetry(state: DashboardState, msg: Telemetry) -> DashboardState:
    view = _view(state, msg.device)
    if view.telemetry and view.telemetry.t_s > msg.t_s:
        return state
    return _put(_seen(state, msg.t_s), replace(view, telemetry=msg))


def _order(state: DashboardState, msg: Order) -> DashboardState:
    state = _seen(state, msg.t_s)
    book = _slot_book(state, msg.slot)
    if msg.order_id in book.rejected:
        return state
    return _put_book(state, replace(book, orders={**book.orders, msg.order_id: msg}))


def _result(state: DashboardState, msg: Result) -> DashboardState:
    if msg.status != "rejected":
        return state
    rejection = Rejection(msg.device, msg.kind, msg.ref, msg.reason, msg.t_s)
    state = replace(state, rejections=(*state.rejections, rejection)[-KEEP_REJECTIONS:],
                    rejected_total=state.rejected_total + 1)
    view = _view(state, msg.device)
    state = _put(state, replace(view, rejections=view.rejections + 1))
    slot = _order_slot(msg.ref) if msg.kind == "order" else None
    if slot is None:
        return state
    book = _slot_book(state, slot)
    orders = {ref: o for ref, o in book.orders.items() if ref != msg.ref}
    return _put_book(state, replace(book, orders=orders, rejected=book.rejected | {msg.ref}))


def _order_slot(ref: str) -> int | None:
    """The slot named in an order id ``device:slot:seq``; None for anything else."""
    parts = ref.split(":")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def _clearing(state: DashboardState, msg: Clearing) -> DashboardState:
    state = _seen(state, msg.t_s)
    state = _put_book(state, replace(_slot_book(state, msg.slot), cleared=True))
    if state.clearing is not None and state.clearing.slot > msg.slot:
        return state
    return replace(state, clearing=msg)


def _award_or_settlement(state: DashboardState, msg: Award | Settlement) -> DashboardState:
    """A device's award (or settlement), unless it holds one of a later slot already."""
    view = _view(state, msg.device)
    held: Award | Settlement | None = getattr(view, msg.TYPE)
    if held is not None and held.slot > msg.slot:
        return state
    changes: dict[str, Any] = {msg.TYPE: msg}  # the field is named for the message type
    return _put(state, replace(view, **changes))


def _report(state: DashboardState, msg: MeterReport) -> DashboardState:
    metered = dict(state.metered)
    slot = metered.get(msg.slot, Metered(msg.slot))
    metered[msg.slot] = replace(slot, reports={**slot.reports, msg.device: msg})
    return replace(state, metered=_keep_newest(metered))


def _header(state: DashboardState, msg: BlockHeader) -> DashboardState:
    if state.ledger_height is not None and state.ledger_height >= msg.height:
        return state
    return replace(state, ledger_height=msg.height)


def _block_data(state: DashboardState, msg: BlockData) -> DashboardState:
    """A whole block; the genesis block's community gives the rules when none are known yet."""
    state = _header(state, msg.header)
    if msg.header.height != 0 or state.community is not None:
        return state
    for tx in msg.transactions:
        if tx.kind == "community":
            try:
                data = tx.body.encode()
                body = parse_json_object(data, len(data))
                return _with_community(state, from_dict(Community, body))
            except (PayloadError, SchemaError, ValueError):
                return state
    return state


def _tick(state: DashboardState, msg: ClockTick) -> DashboardState:
    return replace(state, clock_s=max(msg.t_s, state.clock_s or 0), ended=state.ended or msg.last)


_HANDLERS: dict[type[Message], Callable[[DashboardState, Any], DashboardState]] = {
    Status: _status, Telemetry: _telemetry, Order: _order, Result: _result, Clearing: _clearing,
    Award: _award_or_settlement, Settlement: _award_or_settlement, MeterReport: _report,
    BlockHeader: _header, BlockData: _block_data, ClockTick: _tick,
}
