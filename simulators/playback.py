"""Playback of a finished run: the live dashboard's frames, one per slot.

Each slot's frame is the dashboard's own model (:mod:`broker.dashboard.state`) after it
has been fed, in the order the bus would have carried them, what the run recorded of
that slot and every slot before it:

- a clock tick at the slot's start (the run's last slot: the last tick);
- from the ledger: the headers of the blocks sealed up to the slot's gate closure (the
  last frame: every block), the slot's signed orders, clearing and awards, and its
  meter reports and settlements (sealed two gates later);
- from ``results.db``: the coordinator's rejections of the slot's orders and reports
  with their reasons (``orders``), and each household's telemetry as the slot's average
  power and its battery's state of charge at the end of the slot (``household_slots``).

The community's rules (feeder limits, slot length) come from the ledger's genesis
block. :func:`load_playback` reads the run; :func:`build_frames` is pure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.clock import SlotTimes
from broker.community import Community
from broker.dashboard.state import DashboardState, apply, for_community
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
    Telemetry,
)
from ledger.errors import LedgerError
from ledger.store import LedgerStore
from simulators.physics import average_power_w
from simulators.run_folder import RunFolderError, open_run

SLOTTED = (Order, Clearing, Award, MeterReport, Settlement)  # what the ledger records, each of one slot
RESULT_TABLES = {"slots": "slot", "orders": "slot, ref", "households": "household",
                 "household_slots": "slot, household"}  # results.db's tables read, and their order


class PlaybackError(Exception):
    """A run that cannot be played back; the message names the folder and what is wrong."""


@dataclass(frozen=True)
class Playback:
    path: Path
    community: Community
    slots: tuple[int, ...]
    frames: tuple[DashboardState, ...]  # frames[i] shows slots[i]

    def index_of(self, slot: int) -> int:
        """The frame of ``slot``; PlaybackError names the run's slots if it has none."""
        try:
            return self.slots.index(slot)
        except ValueError:
            raise PlaybackError(f"slot {slot} is not in the run at {self.path} (its slots are "
                                f"{self.slots[0]}..{self.slots[-1]})") from None


def build_frames(community: Community, batches: Sequence[Iterable[Message]]) -> tuple[DashboardState, ...]:
    """The state after each batch, each built on the one before."""
    state = for_community(community)
    frames: list[DashboardState] = []
    for batch in batches:
        for msg in batch:
            state = apply(state, msg)
        frames.append(state)
    return tuple(frames)


def load_playback(path: Path) -> Playback:
    """Read the run folder at ``path`` into frames; PlaybackError says what is missing."""
    try:
        run = open_run(path)
        community = run.read_community()
        results = run.read_tables(RESULT_TABLES)
    except RunFolderError as exc:
        raise PlaybackError(str(exc)) from None
    where = f"run folder {path}"
    try:
        with LedgerStore.open_readonly(run.ledger_db) as store:
            headers: dict[int, list[BlockHeader]] = defaultdict(list)
            recorded: dict[int, list[Message]] = defaultdict(list)
            for block in store.blocks():
                headers[block.header.slot].append(block.header)
                for tx in block.transactions[1:] if block.height == 0 else block.transactions:
                    msg = tx.message()
                    if isinstance(msg, SLOTTED):
                        recorded[msg.slot].append(msg)
    except LedgerError as exc:
        raise PlaybackError(f"{where}: ledger.db: {exc}") from None
    slots = tuple(row["slot"] for row in results["slots"])
    if not slots:
        raise PlaybackError(f"{where}: results.db holds no slots")
    times = community.market.times
    rejected, telemetry = _rejections(results["orders"], times), _telemetry(results, times)
    batches: list[list[Message]] = []
    for index, slot in enumerate(slots):
        last = index == len(slots) - 1
        sealed = [h for s in sorted(headers) if (s <= slot or last) for h in headers.pop(s)]
        mine = recorded.pop(slot, [])
        batches.append([ClockTick(index, times.start_s(slot), last), *sealed, *_kinds(mine, "order"),
                        *rejected[slot], *_kinds(mine, "clearing", "award"), *telemetry[slot],
                        *_kinds(mine, "report", "settlement")])
    return Playback(path, community, slots, build_frames(community, batches))


def _kinds(messages: list[Message], *types: str) -> list[Message]:
    return [m for m in messages if m.TYPE in types]


def _rejections(rows: Sequence[dict[str, Any]], times: SlotTimes) -> dict[int, list[Message]]:
    """The coordinator's refusals as it published them: an order's before its gate, a
    report's when the slot after it starts."""
    out: dict[int, list[Message]] = defaultdict(list)
    for row in rows:
        if row["accepted"]:
            continue
        t_s = times.gate_s(row["slot"]) if row["kind"] == "order" else times.end_s(row["slot"])
        out[row["slot"]].append(Result(row["device"], row["ref"], row["kind"], "rejected",
                                       row["reason"] or "", t_s))
    return out


def _telemetry(results: Mapping[str, Sequence[dict[str, Any]]], times: SlotTimes) -> dict[int, list[Message]]:
    """Each household's slot as telemetry: average powers (W) and the state of charge at
    its end; a reading the household has no device for is left out, as an agent does."""
    devices = {row["household"]: (row["pv_peak_w"] > 0, row["battery_wh"] > 0)
               for row in results["households"]}
    out: dict[int, list[Message]] = defaultdict(list)
    for row in results["household_slots"]:
        pv, battery = devices.get(row["household"], (True, True))
        out[row["slot"]].append(Telemetry(
            row["household"], times.start_s(row["slot"]),
            average_power_w(row["import_wh"] - row["export_wh"], times.slot_s),
            average_power_w(row["pv_wh"], times.slot_s) if pv else None,
            average_power_w(row["discharge_wh"] - row["charge_wh"], times.slot_s) if battery else None,
            row["soc_end_pct"] if battery else None,
        ))
    return out
