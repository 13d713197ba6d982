"""Forecasts of a household's load and PV energy per market slot.

A :class:`Forecaster` reads the slot history the agent has metered and predicts the
next slots. :class:`SeasonalNaive` repeats the same slot one period (a day) back,
falls back to the last metered slot (persistence), and before any history to the
instantaneous power the agent reads now. The ONNX forecaster sits behind the same
interface.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SlotEnergy:
    """Metered or forecast energy of one slot."""

    slot: int
    load_wh: int
    pv_wh: int


@dataclass(frozen=True)
class Forecast:
    """A forecast for one slot, saying which method produced it."""

    slot: int
    load_wh: int
    pv_wh: int
    method: str  # "seasonal-naive", "persistence", "instantaneous" or "none"

    @property
    def net_wh(self) -> int:
        """Expected energy the household needs from outside (negative: surplus)."""
        return self.load_wh - self.pv_wh


class History:
    """The last ``capacity`` metered slots, keyed by slot id."""

    def __init__(self, capacity: int = 7 * 96) -> None:
        self.capacity = capacity
        self._slots: OrderedDict[int, SlotEnergy] = OrderedDict()

    def add(self, energy: SlotEnergy) -> None:
        self._slots[energy.slot] = energy
        self._slots.move_to_end(energy.slot)
        while len(self._slots) > self.capacity:
            self._slots.popitem(last=False)

    def get(self, slot: int) -> SlotEnergy | None:
        return self._slots.get(slot)

    def latest(self) -> SlotEnergy | None:
        if not self._slots:
            return None
        return self._slots[next(reversed(self._slots))]

    def __len__(self) -> int:
        return len(self._slots)


class Forecaster(Protocol):
    """Predicts ``horizon`` slots from ``first_slot`` on."""

    def forecast(
        self, history: History, first_slot: int, horizon: int, now: SlotEnergy | None
    ) -> tuple[Forecast, ...]: ...

    def observe_rating(self, pv_peak_w: int) -> None:
        """The PV system's rated power, once the inverter has been read."""


@dataclass(frozen=True)
class SeasonalNaive:
    """The same slot one period ago; else the latest slot; else the power read now.

    ``now`` is the instantaneous load and PV scaled to one slot, used only while the
    history is empty (the first slot after start).
    """

    period_slots: int = 96

    def observe_rating(self, pv_peak_w: int) -> None:
        pass

    def forecast(
        self, history: History, first_slot: int, horizon: int, now: SlotEnergy | None
    ) -> tuple[Forecast, ...]:
        result = []
        for slot in range(first_slot, first_slot + horizon):
            seasonal = history.get(slot - self.period_slots)
            latest = history.latest()
            if seasonal is not None:
                result.append(Forecast(slot, seasonal.load_wh, seasonal.pv_wh, "seasonal-naive"))
            elif latest is not None:
                result.append(Forecast(slot, latest.load_wh, latest.pv_wh, "persistence"))
            elif now is not None:
                result.append(Forecast(slot, now.load_wh, now.pv_wh, "instantaneous"))
            else:
                result.append(Forecast(slot, 0, 0, "none"))
        return tuple(result)
