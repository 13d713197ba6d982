"""The coordinator's behaviour: payloads and time in, messages to publish out.

:class:`Coordinator` validates orders and reports, clears each slot at gate closure,
settles each slot once its meter reports are in, and seals one ledger block per slot.
It stores before it answers; the async shell in :mod:`coordinator.bus_loop` only moves
bytes. Slot ``s`` is cleared at its gate closure; at the same moment slot ``s - 2``
(whose reports arrived when slot ``s - 1`` began) is settled. With federated rounds on
(``community.forecasting``) it also takes members' forecast shares and, at each round's
slot boundary, publishes the pooled models (:mod:`coordinator.model_rounds`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from broker.codec import PayloadError
from broker.community import Community
from broker.identity import Identity
from broker.messages import (
    BlockHeader,
    Message,
    MeterReport,
    Order,
    Result,
    Settlement,
    decode,
)
from broker.model_messages import ForecastShare, ModelRelease
from broker.schema import to_dict
from broker.topics import Topics
from coordinator.clearing import clear_slot, to_award_messages, to_clearing_message
from coordinator.intake import Intake, Verdict
from coordinator.model_rounds import ModelRounds
from coordinator.rejections import reason_label
from coordinator.settlement import SETTLEMENT_LAG_SLOTS, settle_slot, terms_for
from coordinator.standing import Standing
from coordinator.store import CoordinatorStore
from ledger.blocks import block_data, member_proofs
from ledger.transactions import Transaction
from ledger.writer import LedgerWriter

log = logging.getLogger("gridmesh.coordinator")


@dataclass(frozen=True)
class Outgoing:
    topic: str
    message: Message
    retain: bool = False


class Coordinator:
    def __init__(
        self,
        community: Community,
        identity: Identity,
        store: CoordinatorStore,
        ledger: LedgerWriter,
        models: Mapping[str, bytes] | None = None,  # the forecasters every member starts with
    ) -> None:
        if community.coordinator_key != identity.public_key_hex:
            raise ValueError("community.coordinator_key is not this coordinator's public key")
        self.community = community
        self.identity = identity
        self.store = store
        self.ledger = ledger
        self.topics = Topics(community.id)
        self.times = community.market.times
        self.counts: Counter[str] = Counter()
        self.rejections: Counter[tuple[str, ...]] = Counter()  # (kind, reason label): refusals
        self.intake: Intake = store.restore(community)
        self.standing = Standing(community.rules)
        for settlement in store.settlements():  # the same standing as before a restart
            self.standing.record(settlement, settlement.slot + SETTLEMENT_LAG_SLOTS)
        self.intake.standing = self.standing
        self._genesis_sent = False
        cleared = self.intake.cleared_through
        head = ledger.store.head()
        if cleared < 0 and head is not None and head.height > 0:
            cleared = head.slot - 1  # the first gate was sealed, then the process died: run it again
        self.next_gate_slot: int | None = cleared + 1 if cleared >= 0 else None
        self.rounds: ModelRounds | None = None
        self._republish: list[ModelRelease] = []
        if community.forecasting.enabled:
            if not models:
                raise ValueError("community.forecasting.round_slots is set: the coordinator needs the "
                                 "members' current forecaster models")
            self.rounds = ModelRounds(community, identity, models)
            pooled_through = store.progress("pooled_through_round")
            releases = store.releases()
            self.rounds.restore(releases, pooled_through, store.open_shares(pooled_through))
            # Published again (retained, so harmless) at the first advance: a restart may
            # have come between storing a release and publishing it.
            self._republish = list({r.kind: r for r in releases}.values())

    def _with_standing(self, settlement: Settlement, slot: int) -> Settlement:
        applied = self.standing.apply(settlement, slot)
        self.counts["exclusions"] += applied is not settlement
        return applied

    def _ensure_started(self, now_s: int) -> int:
        """On first use: write the genesis block and find the first gate to run."""
        if self.next_gate_slot is None:
            self.ledger.genesis(to_dict(self.community), now_s)
            self.next_gate_slot = self.times.slot_of(now_s + self.times.gate_closure_s) + 1
        return self.next_gate_slot

    # -- submissions ------------------------------------------------------------

    def handle(self, kind: str, device: str, payload: bytes, now_s: int,
               hold: list[tuple[str, str, bytes]] | None = None) -> list[Outgoing]:
        """Handle one order, report or forecast share payload from ``device``'s topic; with
        ``hold``, a report of the slot still running is put there, unjudged, for the next
        clock tick (:meth:`Intake.reports_running_slot`)."""
        if kind == "share":
            return self._handle_share(device, payload, now_s)
        expected = Order if kind == "order" else MeterReport
        try:
            msg = decode(payload, expected)
        except PayloadError as exc:
            return self.refuse(device, exc.reason, now_s)
        if hold is not None and isinstance(msg, MeterReport) and self.intake.reports_running_slot(msg, now_s):
            hold.append((kind, device, payload))
            return []
        self._ensure_started(now_s)
        if isinstance(msg, Order):
            verdict = self.intake.submit_order(msg, device, now_s)
        else:
            assert isinstance(msg, MeterReport)
            verdict = self.intake.submit_report(msg, device, now_s)
        result = self._answer(verdict, kind, device, payload, now_s)
        out = []
        if kind != "report" or result.status != "accepted":
            out.append(Outgoing(self.topics.device(device, "result"), result))
        if not verdict.first_time and verdict.authentic and verdict.accepted:
            out.extend(self._closing_answer(kind, device, verdict.slot))
        return out

    def _closing_answer(self, kind: str, device: str, slot: int) -> list[Outgoing]:
        """For a resubmission (an agent replaying its outbox after a reconnect): the answer
        that closed the first one, if it is out: an order's award once its slot is cleared,
        a report's settlement once its slot is settled. Sent again, never made again."""
        answer: Message | None = None
        if kind == "order" and slot <= self.intake.cleared_through:
            answer = self.store.awards(slot).get(device)
        elif kind == "report" and slot <= self.intake.settled_through:
            answer = self.store.settlement(slot, device)
        if answer is None:
            return []
        self.counts[f"{answer.TYPE}_sent_again"] += 1
        return [Outgoing(self.topics.device(device, answer.TYPE), answer)]

    def handle_many(self, submissions: list[tuple[str, str, bytes]], now_s: int,
                    hold: list[tuple[str, str, bytes]] | None = None) -> list[Outgoing]:
        """Handle (kind, device, payload) submissions with one database commit for all;
        nothing is returned for publishing before that commit. ``hold``: as for :meth:`handle`."""
        out: list[Outgoing] = []
        with self.store.batch():
            for kind, device, payload in submissions:
                out.extend(self.handle(kind, device, payload, now_s, hold))
        return out

    def refuse(self, device: str, reason: str, now_s: int) -> list[Outgoing]:
        """Reject a payload that cannot be read as a submission, saying why."""
        self.counts["payload_rejected"] += 1
        log.warning("rejected payload from %s: %s", device, reason, extra={"device": device})
        result = self._result(device, "", "payload", False, reason, now_s)
        return [Outgoing(self.topics.device(device, "result"), result)]

    def _answer(self, verdict: Verdict, kind: str, device: str, payload: bytes, now_s: int) -> Result:
        if not verdict.authentic:
            self.counts[f"{kind}_rejected"] += 1
            self._refused(kind, device, verdict)
            return self._result(device, verdict.ref, kind, False, verdict.reason, now_s)
        if not verdict.first_time:
            self.counts[f"{kind}_duplicate"] += 1
            first = self.store.result_for(verdict.ref)
            if first is not None:
                return first
        outcome = "accepted" if verdict.accepted else "rejected"
        self.counts[f"{kind}_{outcome}"] += 1
        if not verdict.accepted:
            self._refused(kind, device, verdict)
        # An accepted meter report is answered by its settlement, not a result: its
        # result is only stored, so it is not signed.
        published = kind != "report" or not verdict.accepted
        result = self._result(device, verdict.ref, kind, verdict.accepted, verdict.reason, now_s,
                              signed=published)
        if verdict.first_time:
            self.store.record_verdict(verdict, kind, device, payload, result)
        return result

    def _refused(self, kind: str, device: str, verdict: Verdict) -> None:
        """Count a refusal under its reason's label (metrics) and log it."""
        self.rejections[kind, reason_label(verdict.reason)] += 1
        log.info("%s %s refused: %s", kind, verdict.ref, verdict.reason,
                 extra={"device": device, "slot": verdict.slot})

    def _result(
        self, device: str, ref: str, kind: str, accepted: bool, reason: str, now_s: int,
        signed: bool = True,
    ) -> Result:
        status = "accepted" if accepted else "rejected"
        result = Result(device, ref, kind, status, reason, now_s)
        return self.identity.sign(result) if signed else result

    def _handle_share(self, device: str, payload: bytes, now_s: int) -> list[Outgoing]:
        try:
            share = decode(payload, ForecastShare)
        except PayloadError as exc:
            return self.refuse(device, exc.reason, now_s)
        assert isinstance(share, ForecastShare)
        if self.rounds is None:
            verdict = Verdict(share.share_id, 0, False, "federated forecasting is off in this community "
                              "(forecasting.round_slots is 0)", first_time=False, authentic=False)
        else:
            verdict = self.rounds.submit(share, device, now_s)
        topic = self.topics.device(device, "result")
        if not verdict.first_time and verdict.authentic:
            self.counts["share_duplicate"] += 1
            first = self.store.share_result_for(verdict.ref)
            if first is not None:
                return [Outgoing(topic, first)]
        self.counts[f"share_{'accepted' if verdict.accepted else 'rejected'}"] += 1
        if not verdict.accepted:
            self._refused("share", device, verdict)
        result = self._result(device, verdict.ref, "share", verdict.accepted, verdict.reason, now_s)
        if verdict.first_time:
            self.store.record_share(verdict, share, payload, result)
        return [Outgoing(topic, result)]

    # -- time -------------------------------------------------------------------

    def next_event_s(self, now_s: int) -> int:
        """When the coordinator next has work: the next gate closure, or a round to pool."""
        gate_s = self.times.gate_s(self._ensure_started(now_s))
        pool_s = self.rounds.next_pool_s() if self.rounds is not None else None
        return gate_s if pool_s is None else min(gate_s, pool_s)

    def advance(self, now_s: int) -> list[Outgoing]:
        """Run every gate closure and every round's pooling due at or before ``now_s``."""
        out: list[Outgoing] = []
        slot = self._ensure_started(now_s)
        while self.times.gate_s(slot) <= now_s:
            out.extend(self._gate_closure(slot, self.times.gate_s(slot)))
            slot += 1
            self.next_gate_slot = slot
        out.extend(Outgoing(self.topics.model(r.kind), r, retain=True) for r in self._republish)
        self._republish = []
        if self.rounds is not None:
            for round_, releases in self.rounds.pool_due(now_s):
                self.store.record_round(round_, releases)  # stored before it is published
                self.counts["model_releases"] += len(releases)
                out.extend(Outgoing(self.topics.model(r.kind), r, retain=True) for r in releases)
        return out

    def _gate_closure(self, slot: int, t_s: int) -> list[Outgoing]:
        sign = self.identity.sign
        orders = self.intake.take_slot_orders(slot)
        grid = self.community.grid
        outcome = clear_slot(
            slot, orders, self.community.tariff.at(self.times.start_s(slot)),
            grid.import_limit_wh(self.times.slot_s), grid.export_limit_wh(self.times.slot_s),
            self.community.market.mechanism,
        )
        clearing = sign(to_clearing_message(outcome, self.community.market.mechanism, t_s))
        awards = tuple(sign(a) for a in to_award_messages(outcome, t_s))

        settled_slot = slot - SETTLEMENT_LAG_SLOTS
        reports = self.intake.take_slot_reports(settled_slot)
        past_awards = self.store.awards(settled_slot)
        members = sorted(set(past_awards) | set(reports))
        settlements: tuple[Settlement, ...] = ()
        if members:
            slot_settlement = settle_slot(
                settled_slot, members, past_awards, reports,
                self.community.tariff.at(self.times.start_s(settled_slot)),
                terms={d: terms_for(self.community, d) for d in members},
            )
            settlements = tuple(sign(self._with_standing(s, slot)) for s in slot_settlement.settlements)

        txs = [Transaction.from_message("order", o) for o in orders]
        if orders:
            txs.append(Transaction.from_message("clearing", clearing))
            txs.extend(Transaction.from_message("award", a) for a in awards)
        txs.extend(Transaction.from_message("report", reports[d]) for d in sorted(reports))
        txs.extend(Transaction.from_message("settlement", s) for s in settlements)
        headers: tuple[BlockHeader, ...] = ()
        if txs:
            headers = self.ledger.seal(slot, t_s, txs)

        self.store.record_gate(clearing, awards, settled_slot, settlements)
        self.intake.forget_before(settled_slot)
        self.counts["slots_cleared"] += 1
        log.info("slot %d cleared: %d order(s), %d award(s); slot %d settled: %d member(s); %d block(s)",
                 slot, len(orders), len(awards), settled_slot, len(settlements), len(headers),
                 extra={"slot": slot})

        out = [Outgoing(self.topics.clearing, clearing)]
        out.extend(Outgoing(self.topics.device(a.device, "award"), a) for a in awards)
        out.extend(Outgoing(self.topics.device(s.device, "settlement"), s) for s in settlements)
        out.extend(Outgoing(self.topics.block, header, retain=True) for header in headers)
        if headers:
            if not self._genesis_sent:  # once per process: replicas start from it
                genesis = self.ledger.store.block(0)
                if genesis is not None:
                    out.append(Outgoing(self.topics.block_data, block_data(genesis)))
                self._genesis_sent = True
            out.extend(Outgoing(self.topics.block_data, block_data(b)) for b in self.ledger.last_sealed)
            out.extend(Outgoing(self.topics.device(p.device, "proof"), p)
                       for b in self.ledger.last_sealed for p in member_proofs(b))
        return out
