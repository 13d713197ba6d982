"""What an agent must deliver, and which of the coordinator's answers closes each message.

Orders, meter reports and forecast shares go into the agent's :class:`~edge.outbox.Outbox`
before they are published. Each leaves it with the coordinator's signed answer that
closes it:

| message | closed by |
|---|---|
| order | its award (every accepted order gets one at its gate closure), or its result when refused |
| meter report | its settlement (an accepted report's receipt), or its result when refused |
| share | its result |

Until then it is published again, oldest first, after every reconnect and whenever the
coordinator comes back online. Telemetry (QoS 0) and clock acknowledgements are not kept:
the next reading replaces the one, the clock master asks again for the other.
"""

from __future__ import annotations

from collections import Counter

from broker.messages import Award, Message, MeterReport, Order, Result, Settlement, encode, report_id
from broker.model_messages import ForecastShare
from broker.topics import Topics
from edge.outbox import Entry, Outbox


class Delivery:
    """One agent's outbox with its rule."""

    def __init__(self, device: str, topics: Topics, outbox: Outbox, counts: Counter[str]) -> None:
        self.device = device
        self.topics = topics
        self.outbox = outbox
        self.counts = counts

    def keep(self, messages: list[Message], now_s: int) -> None:
        """Write the messages that must be delivered into the outbox (one transaction)."""
        entries = []
        for msg in messages:
            ref_slot = _ref_slot(msg)
            if ref_slot is not None:
                ref, slot = ref_slot
                entries.append(Entry(ref, msg.TYPE, self.topics.device(self.device, msg.TYPE), encode(msg),
                                     slot, now_s))
        self.outbox.put(entries, now_s)

    def on_result(self, result: Result) -> None:
        """A trusted result closes a share, and a refused order or report."""
        if result.kind == "share" or result.status == "rejected":
            self.outbox.confirm(result.ref)

    def on_award(self, award: Award) -> None:
        self.outbox.confirm(award.order_id)

    def on_settlement(self, settlement: Settlement) -> None:
        self.outbox.confirm(report_id(self.device, settlement.slot))

    def waiting(self) -> list[Entry]:
        """What to publish again, oldest first."""
        entries = self.outbox.waiting()
        self.counts["outbox_replayed"] += len(entries)
        return entries

    def pending(self) -> int:
        return len(self.outbox)


def _ref_slot(msg: Message) -> tuple[str, int] | None:
    if isinstance(msg, Order):
        return msg.order_id, msg.slot
    if isinstance(msg, MeterReport):
        return msg.report_id, msg.slot
    if isinstance(msg, ForecastShare):
        return msg.share_id, msg.round
    return None
