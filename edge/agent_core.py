"""The agent's behaviour for one household: readings and bus messages in, actions out.

Pure: no network, no Modbus. At the start of slot ``k`` the agent
1. reports the energy metered over slot ``k - 1`` (from its meter's counters),
2. applies the battery power planned for slot ``k``, and
3. plans slot ``k + 1`` and places its order before that slot's gate closes.
The shell (:mod:`edge.agent`) reads the devices, writes the setpoint and publishes.
Cut off from the market (island mode) it still reports, but hands the battery to its
own self-consumption control and plans and orders nothing.

A household plans with :mod:`edge.policy` (self-consumption first, the rest traded). A
member with the role ``storage`` (the community's battery) plans with
:mod:`edge.storage_policy` from the public clearings and runs its battery at what it
was awarded.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from dataclasses import dataclass, field

from broker.community import Community
from broker.identity import Identity, Verifier
from broker.messages import (
    Award,
    Clearing,
    Message,
    MeterReport,
    Order,
    Result,
    Settlement,
    Step,
    Telemetry,
)
from broker.units import SECONDS_PER_HOUR
from edge.forecast import Forecaster, History
from edge.forecast_features import HORIZON
from edge.household_energy import instantaneous, meter_frozen, pv_energy_wh, self_consumption_w, slot_energy
from edge.policy import BatteryView, Plan, plan_ahead, plan_slot, project_stored_wh
from edge.price_forecast import PriceForecaster
from edge.proofs import ProofKeeper
from edge.readings import MeterReading, Readings
from edge.storage_policy import MarketSignal, award_setpoint_w, market_signal, plan_storage

log = logging.getLogger("gridmesh.edge")  # records name their device (extra): agents share processes
PLAN_SLOTS = HORIZON - 1  # the forecasters' reach from the slot after the one that starts
PLANNERS = ("horizon", "slot")


@dataclass(frozen=True)
class SlotStartActions:
    messages: tuple[Message, ...]
    battery_setpoint_w: int | None  # None: no setpoint (no battery, or released)
    release_battery: bool  # hand the battery to its own self-consumption control
    awaiting: frozenset[str]  # refs of the results to wait for before acknowledging
    pv_limit_pct: int | None = None  # a new inverter limit (curtailment); None: as it is


@dataclass
class AgentCore:
    device: str
    community: Community
    identity: Identity
    forecaster: Forecaster
    last_order_slot: int | None = None  # place no orders after this slot (testbed runs)
    history: History = field(default_factory=History)
    verifier: Verifier = field(default_factory=Verifier)
    counts: Counter[str] = field(default_factory=Counter)
    plans: dict[int, Plan] = field(default_factory=dict)
    awards: dict[int, Award] = field(default_factory=dict)
    settlements: dict[int, Settlement] = field(default_factory=dict)
    sent_orders: dict[int, str] = field(default_factory=dict)
    rejected: set[str] = field(default_factory=set)
    _previous: Readings | None = None
    _previous_slot: int | None = None
    _stuck_meter: MeterReading | None = None  # a frozen meter's values, until they change
    signal: MarketSignal | None = None  # storage: the others' net demand in the last clearing
    proofs: ProofKeeper | None = None  # the member's own trades, checked in the ledger
    pv_limit_pct: int = 100  # the inverter limit last commanded
    _pv_potential_wh: int = 0  # the PV forecast that curtailment was computed from
    planner: str = "horizon"  # horizon: plan the battery over the forecast horizon; slot: one slot
    battery_efficiency_pct: int = 90  # round trip, for the horizon plan
    price_forecaster: PriceForecaster = field(init=False)
    _seq: int = 0

    def __post_init__(self) -> None:
        if self.planner not in PLANNERS:
            raise ValueError(f"planner: {self.planner!r} is not one of {', '.join(PLANNERS)}")
        self.price_forecaster = PriceForecaster(self.community.tariff, self.community.market.slot_s)
        if self.proofs is None:
            self.proofs = ProofKeeper(self.device, self.community.coordinator_key, self.counts)

    def on_slot_start(self, slot: int, readings: Readings, trading: bool = True) -> SlotStartActions:
        """``trading`` False: the market is out of reach (island mode)."""
        assert self.proofs is not None
        self.proofs.check_deadlines(slot)
        messages: list[Message] = []
        awaiting: set[str] = set()
        previous = self._previous if self._previous_slot == slot - 1 else None
        self._previous, self._previous_slot = readings, slot
        stuck = readings.meter is not None and readings.meter == self._stuck_meter
        if stuck or (previous is not None and meter_frozen(previous, readings)):
            # Values that cannot be live: no report from them, none from the next reading
            # against them, and plan as on stale data until the meter moves again.
            self.counts["meter_frozen"] += 1
            log.warning("%s: meter frozen (counters still while %d W flows); no report for slot %d",
                        self.device, readings.meter.power_w if readings.meter else 0, slot - 1,
                        extra={"device": self.device, "slot": slot - 1})
            self._stuck_meter = readings.meter
            readings = dataclasses.replace(readings, meter=None)
            self._previous = readings
        else:
            self._stuck_meter = None
            report = self._report_previous_slot(slot, readings, previous)
            if report is not None:  # answered only if rejected; the settlement is its receipt
                messages.append(report)
        if not readings.fresh:
            self.counts["readings_stale"] += 1

        plan_now = self.plans.pop(slot, None)
        if not trading:
            self.plans.clear()  # plans made for a market this agent cannot reach
            plan_now = None
        setpoint: int | None = None
        release = False
        expected_w = 0  # the battery's expected power this slot, for planning the next
        if readings.has_battery:
            if plan_now is not None and readings.fresh:
                setpoint = plan_now.battery_w
                if self.storage and setpoint is not None:
                    setpoint = award_setpoint_w(self.awards.get(slot), self.community.market.slot_s)
            if setpoint is None:  # the battery follows the household on its own
                release = True
                if not readings.fresh:
                    self.counts["self_consumption_fallback"] += 1
                expected_w = self_consumption_w(readings)
            else:
                expected_w = setpoint

        order = self._plan_next(slot, readings, expected_w) if trading else None
        if order is not None:
            messages.append(order)
            awaiting.add(order.order_id)
        messages.append(self._telemetry(readings))
        for old in [s for s in self.awards if s < slot - 4]:
            del self.awards[old]
        for old in [s for s in self.sent_orders if s < slot - 4]:
            self.rejected.discard(self.sent_orders.pop(old))
        for old in [s for s in self.settlements if s < slot - 8]:
            del self.settlements[old]
        limit = self._pv_limit(slot, readings, plan_now)
        if limit == self.pv_limit_pct:
            limit_change = None
        else:
            limit_change = self.pv_limit_pct = limit
        return SlotStartActions(tuple(messages), setpoint, release, frozenset(awaiting), limit_change)

    def _pv_limit(self, slot: int, readings: Readings, plan: Plan | None) -> int:
        """Curtailment: when the award asks this member to hold back PV (its share of the
        community's surplus beyond the feeder's export limit; the reason says so), cap the
        inverter so the expected PV falls by that much. 100 otherwise."""
        award = self.awards.get(slot)
        inverter = readings.inverter
        if (award is None or award.curtail_wh <= 0 or plan is None or inverter is None
                or inverter.rated_power_w <= 0):
            return 100
        cut_wh = award.curtail_wh
        self._pv_potential_wh = plan.forecast_pv_wh
        rated_wh = inverter.rated_power_w * self.community.market.slot_s // SECONDS_PER_HOUR
        allowed_wh = max(0, plan.forecast_pv_wh - cut_wh)
        limit = min(100, -(-allowed_wh * 100 // rated_wh))  # round up: never cut more than asked
        self.counts["curtailed_slots"] += limit < 100
        log.info("%s: slot %d curtailed to %d %% (%d Wh of its offer found no buyer under the "
                 "feeder export limit)", self.device, slot, limit, cut_wh,
                 extra={"device": self.device, "slot": slot})
        return limit

    def _report_previous_slot(
        self, slot: int, readings: Readings, prev: Readings | None
    ) -> MeterReport | None:
        if prev is None or prev.meter is None or readings.meter is None:  # prev: one slot ago
            return None
        import_wh = readings.meter.import_wh - prev.meter.import_wh
        export_wh = readings.meter.export_wh - prev.meter.export_wh
        if import_wh < 0 or export_wh < 0:
            self.counts["counter_reset"] += 1
            log.warning("%s: meter counters went backwards; no report for slot %d",
                        self.device, slot - 1, extra={"device": self.device, "slot": slot - 1})
            return None
        energy = slot_energy(slot - 1, prev, readings, import_wh - export_wh)
        if energy is not None:  # the forecasting history learns the slot's load and PV
            self.history.add(energy)
        report = MeterReport(
            self.device, slot - 1, import_wh, export_wh,
            readings.meter.import_wh, readings.meter.export_wh, readings.t_s, pv_energy_wh(prev, readings),
        )
        self.counts["reports_sent"] += 1
        signed = self.identity.sign(report)
        assert self.proofs is not None
        self.proofs.expect("report", signed, slot)
        return signed

    def _plan_next(self, slot: int, readings: Readings, setpoint_w: int) -> Order | None:
        target = slot + 1
        if self.last_order_slot is not None and target > self.last_order_slot:
            return None
        slot_s = self.community.market.slot_s
        if readings.inverter is not None:
            self.forecaster.observe_rating(readings.inverter.rated_power_w)
        now = instantaneous(readings, slot_s)
        battery = readings.battery
        view = projected = None
        if battery is not None:
            view = BatteryView(battery.stored_wh, battery.capacity_wh, battery.soc_min_pct,
                               battery.soc_max_pct, battery.max_charge_w, battery.max_discharge_w)
            projected = project_stored_wh(view, setpoint_w, slot_s)
        prices = None
        if self.planner == "horizon" and view is not None and not self.storage:
            prices = self.price_forecaster.path(readings.t_s, target, PLAN_SLOTS)
            if prices.constant:  # self-consumption is the best plan: no need to look further
                prices = None
        forecasts = self.forecaster.forecast(self.history, target, PLAN_SLOTS if prices else 1, now)
        forecast = forecasts[0]
        if self.pv_limit_pct < 100 and forecast.pv_wh < self._pv_potential_wh:
            # While curtailed the inverter shows only what it may give: plan on what the sun
            # offers, or curtailment would lift itself and the surplus return.
            forecast = dataclasses.replace(forecast, pv_wh=self._pv_potential_wh)
            forecasts = (forecast, *forecasts[1:])
        tariff = self.community.tariff.at(target * slot_s)  # the grid's prices in that slot
        if self.storage and view is not None and projected is not None:
            plan = plan_storage(target, view, projected, self.signal, tariff, slot_s, readings.fresh)
        elif prices is not None:
            plan = plan_ahead(forecasts, prices, view, projected, slot_s, readings.fresh,
                              self.battery_efficiency_pct)
            self.counts["horizon_setpoints"] += plan.battery_w is not None
        else:
            plan = plan_slot(forecast, view, projected, tariff, slot_s, readings.fresh)
        self.plans[target] = plan
        if plan.side is None:
            return None
        energy_wh = min(plan.energy_wh, self._connection_limit_wh(plan.side))
        if energy_wh <= 0:
            return None
        order = Order(self.device, target, self._seq, plan.side,
                      (Step(energy_wh, plan.price_u_per_kwh),), readings.t_s)
        self._seq += 1
        self.sent_orders[target] = order.order_id
        self.counts["orders_sent"] += 1
        signed = self.identity.sign(order)
        assert self.proofs is not None
        self.proofs.expect("order", signed, slot)
        return signed

    def _connection_limit_wh(self, side: str) -> int:
        member = self.community.member(self.device)
        if member is None:
            return 0
        limits, slot_s = member.limits, self.community.market.slot_s
        return limits.import_limit_wh(slot_s) if side == "buy" else limits.export_limit_wh(slot_s)

    def _telemetry(self, readings: Readings) -> Telemetry:
        meter, inverter, battery = readings.meter, readings.inverter, readings.battery
        return Telemetry(
            self.device, readings.t_s,
            meter.power_w if meter else None,
            inverter.pv_power_w if inverter else None,
            battery.power_w if battery else None,
            battery.soc_pct if battery else None,
        )

    # -- messages from the coordinator -------------------------------------------

    def _trusted(self, msg: Message) -> bool:
        if self.verifier.verify(msg, self.community.coordinator_key):
            return True
        self.counts["bad_coordinator_signature"] += 1
        log.warning("%s: dropped %s with a bad coordinator signature", self.device, msg.TYPE,
                    extra={"device": self.device})
        return False

    def on_result(self, result: Result) -> str | None:
        """Record a result; returns the ref it answers (None when not trusted)."""
        if not self._trusted(result):
            return None
        self.counts[f"{result.kind}_{result.status}"] += 1
        if result.status == "rejected":
            self.rejected.add(result.ref)
            assert self.proofs is not None
            self.proofs.forget(result.ref)
            log.warning("%s: %s %s rejected: %s", self.device, result.kind, result.ref,
                        result.reason, extra={"device": self.device})
        return result.ref

    def on_award(self, award: Award) -> str | None:
        if not self._trusted(award):
            return None
        if self._repeated(award, self.awards.get(award.slot), award.slot):
            return award.order_id
        self.awards[award.slot] = award
        self.counts[f"award_{award.status}"] += 1
        assert self.proofs is not None
        self.proofs.expect("award", award, award.slot)
        return award.order_id

    def on_settlement(self, settlement: Settlement) -> bool:
        """Record a settlement; False when it is not trusted."""
        if not self._trusted(settlement):
            return False
        if not self._repeated(settlement, self.settlements.get(settlement.slot), settlement.slot + 2):
            self.settlements[settlement.slot] = settlement
            self.counts["settlements"] += 1
            assert self.proofs is not None
            self.proofs.expect("settlement", settlement, settlement.slot + 2)
        return True

    def _repeated(self, msg: Award | Settlement, known: Message | None, sealed_slot: int) -> bool:
        """An answer the agent already has (sent again after a reconnect), or one whose
        ledger proof was due so long ago that it is no longer watched for: not counted or
        expected in the ledger a second time."""
        old = self._previous_slot is not None and sealed_slot < self._previous_slot - 4
        if msg == known or old:
            self.counts[f"{msg.TYPE}_repeated"] += 1
            return True
        return False

    @property
    def storage(self) -> bool:
        member = self.community.member(self.device)
        return member is not None and member.role == "storage"

    def on_clearing(self, clearing: Clearing) -> str | None:
        """A public clearing: the storage agent's market signal. Returns the ref it answers."""
        if not self._trusted(clearing):
            return None
        if self.signal is None or clearing.slot > self.signal.slot:
            self.signal = market_signal(clearing, self.awards.get(clearing.slot))
        return clearing_ref(clearing.slot)

    def clearing_expected(self, slot: int) -> str | None:
        """Storage plans on the clearing of the slot that starts: wait for it if it is not
        in yet (every gate closure publishes one; none before the agent's first slot)."""
        if not self.storage or self._previous_slot is None:
            return None
        if self.signal is not None and self.signal.slot >= slot:
            return None
        return clearing_ref(slot)

    def award_expected(self, slot: int) -> str | None:
        """The id of this agent's accepted order for ``slot`` while its award is still due."""
        order_id = self.sent_orders.get(slot)
        if order_id is None or order_id in self.rejected or slot in self.awards:
            return None
        return order_id


def clearing_ref(slot: int) -> str:
    return f"clearing:{slot}"
