"""The community's rules, shared by every agent and the coordinator.

Read from the ``community:`` section of a configuration file. Limits are powers in W;
their energy per slot follows from the slot length.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import functools
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path

from broker.clock import SlotTimes
from broker.messages import HASH, ID, MAX_MONEY_U, MAX_PRICE_U_PER_KWH
from broker.schema import SchemaError, bounded, check_bounds
from broker.units import energy_wh_for

ROLES = ("prosumer", "consumer", "pv", "storage")
HHMM = r"\d{2}:\d{2}"


@dataclass(frozen=True)
class TouPeriod:
    """Prices for part of the day (local time in the tariff's ``timezone``), e.g. a peak.

    ``start`` is inclusive and ``end`` exclusive (``24:00`` is midnight); a period that
    ends before it starts runs past midnight. A price left out keeps the base price."""

    start: str = bounded(pattern=HHMM)
    end: str = bounded(pattern=HHMM)
    import_u_per_kwh: int | None = bounded(None, min=0, max=MAX_PRICE_U_PER_KWH)
    feedin_u_per_kwh: int | None = bounded(None, min=0, max=MAX_PRICE_U_PER_KWH)
    days: str = bounded("all", choices=("all", "weekdays", "weekends"))

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            hours, minutes = map(int, getattr(self, name).split(":"))
            if minutes > 59 or hours > 24 or (hours == 24 and minutes):
                raise ValueError(f"{name}: {getattr(self, name)!r} is not a time of day")

    def covers(self, local: dt.datetime) -> bool:
        weekend = local.weekday() >= 5
        if (self.days == "weekdays" and weekend) or (self.days == "weekends" and not weekend):
            return False
        minute = local.hour * 60 + local.minute
        start, end = _minutes(self.start), _minutes(self.end)
        return start <= minute < end if start <= end else (minute >= start or minute < end)


@dataclass(frozen=True)
class PricePoint:
    """Dynamic prices from ``start_s`` (UTC epoch seconds) until the next point."""

    start_s: int = bounded(min=0, max=2**40)
    import_u_per_kwh: int = bounded(min=0, max=MAX_PRICE_U_PER_KWH)
    feedin_u_per_kwh: int = bounded(min=0, max=MAX_PRICE_U_PER_KWH)


@dataclass(frozen=True)
class Tariff:
    """The grid's prices: what importing costs and what feeding in earns.

    Flat by default; ``time_of_use`` periods override it for parts of the day (the first
    period that covers a time wins) and ``dynamic`` prices (say from a day-ahead market,
    see :func:`read_price_csv`) override both from their start. :meth:`at` gives the
    flat prices that hold at a moment."""

    import_u_per_kwh: int = bounded(300_000, min=0, max=MAX_PRICE_U_PER_KWH)
    feedin_u_per_kwh: int = bounded(80_000, min=0, max=MAX_PRICE_U_PER_KWH)
    timezone: str = bounded("UTC", max_len=64)
    time_of_use: tuple[TouPeriod, ...] = ()
    dynamic: tuple[PricePoint, ...] = ()

    def __post_init__(self) -> None:
        try:
            zone = zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: unknown time zone {self.timezone!r}") from None
        object.__setattr__(self, "_zone", zone)
        _check_prices("", self.import_u_per_kwh, self.feedin_u_per_kwh)
        for index, period in enumerate(self.time_of_use):
            _check_prices(f"time_of_use[{index}].", *self._period_pair(period))
        for index, point in enumerate(self.dynamic):
            _check_prices(f"dynamic[{index}].", point.import_u_per_kwh, point.feedin_u_per_kwh)
            if index and point.start_s <= self.dynamic[index - 1].start_s:
                raise ValueError(f"dynamic[{index}].start_s: must be after the point before it")

    @property
    def flat(self) -> bool:
        return not self.time_of_use and not self.dynamic

    def at(self, t_s: int) -> Tariff:
        """The flat prices in force at ``t_s`` (a slot's start)."""
        if self.flat:
            return self
        if self.dynamic and t_s >= self.dynamic[0].start_s:
            point = self.dynamic[bisect.bisect_right(self._starts, t_s) - 1]
            return Tariff(point.import_u_per_kwh, point.feedin_u_per_kwh)
        local = dt.datetime.fromtimestamp(t_s, self._zone)  # type: ignore[attr-defined]
        for period in self.time_of_use:
            if period.covers(local):
                return Tariff(*self._period_pair(period))
        return Tariff(self.import_u_per_kwh, self.feedin_u_per_kwh)

    def _period_pair(self, period: TouPeriod) -> tuple[int, int]:
        return (self.import_u_per_kwh if period.import_u_per_kwh is None else period.import_u_per_kwh,
                self.feedin_u_per_kwh if period.feedin_u_per_kwh is None else period.feedin_u_per_kwh)

    @functools.cached_property
    def _starts(self) -> list[int]:
        return [p.start_s for p in self.dynamic]


def _minutes(hhmm: str) -> int:
    hours, minutes = map(int, hhmm.split(":"))
    return hours * 60 + minutes


def _check_prices(where: str, import_u: int, feedin_u: int) -> None:
    if feedin_u > import_u:
        raise ValueError(f"{where}feedin_u_per_kwh ({feedin_u}) must not exceed "
                         f"import_u_per_kwh ({import_u})")


def read_price_csv(path: Path) -> tuple[PricePoint, ...]:
    """Dynamic prices from a CSV with a header ``start_utc,import_u_per_kwh,feedin_u_per_kwh``
    (``start_utc`` as ``2016-06-06T00:00``); ValueError names the line that is wrong."""
    points: list[PricePoint] = []
    with path.open(newline="") as fh:
        rows = csv.reader(fh)
        header = next(rows, None)
        if header != ["start_utc", "import_u_per_kwh", "feedin_u_per_kwh"]:
            raise ValueError(f"{path}: header must be start_utc,import_u_per_kwh,feedin_u_per_kwh")
        for line, row in enumerate(rows, start=2):
            try:
                start, import_u, feedin_u = row
                stamp = dt.datetime.fromisoformat(start).replace(tzinfo=dt.UTC)
                point = PricePoint(int(stamp.timestamp()), int(import_u), int(feedin_u))
                check_bounds(point)
                _check_prices("", point.import_u_per_kwh, point.feedin_u_per_kwh)
            except (ValueError, SchemaError) as exc:
                raise ValueError(f"{path}: line {line}: {exc}") from None
            if points and point.start_s <= points[-1].start_s:
                raise ValueError(f"{path}: line {line}: {start} is not after the line before it")
            points.append(point)
    if not points:
        raise ValueError(f"{path}: no prices")
    return tuple(points)


@dataclass(frozen=True)
class PowerLimits:
    """Import and export limits of a connection (a member's, or the whole feeder's)."""

    import_limit_w: int = bounded(200_000, min=0, max=10**9)
    export_limit_w: int = bounded(150_000, min=0, max=10**9)

    def import_limit_wh(self, slot_s: int) -> int:
        return energy_wh_for(self.import_limit_w, slot_s)

    def export_limit_wh(self, slot_s: int) -> int:
        return energy_wh_for(self.export_limit_w, slot_s)


def default_member_limits() -> PowerLimits:
    # 10 kWh import and 4 kWh export per 30 minutes.
    return PowerLimits(import_limit_w=20_000, export_limit_w=8_000)


@dataclass(frozen=True)
class Member:
    """One registered device: who it is, its key, its role and its connection limits."""

    id: str = bounded(pattern=ID)
    public_key: str = bounded(pattern=HASH)
    role: str = bounded("prosumer", choices=ROLES)
    limits: PowerLimits = field(default_factory=default_member_limits)


@dataclass(frozen=True)
class Market:
    slot_s: int = bounded(900, min=60, max=86_400)
    gate_closure_s: int = bounded(300, min=1, max=86_400)
    # uniform (pay-as-clear), pay_as_bid or mmr (mid-market rate): coordinator/clearing.py
    mechanism: str = bounded("uniform", choices=("uniform", "pay_as_bid", "mmr"))

    def __post_init__(self) -> None:
        SlotTimes(self.slot_s, self.gate_closure_s)  # checks gate < slot

    @property
    def times(self) -> SlotTimes:
        return SlotTimes(self.slot_s, self.gate_closure_s)


@dataclass(frozen=True)
class Fees:
    """Charges on energy traded between members, paid by the buyer."""

    p2p_fee_u_per_kwh: int = bounded(0, min=0, max=MAX_PRICE_U_PER_KWH)  # network charge
    loss_pct: int = bounded(0, min=0, max=50)  # wire losses, paid for at the slot's import price


@dataclass(frozen=True)
class Rules:
    """The community's own rules, applied in settlement (0 switches one off)."""

    limit_penalty_u_per_kwh: int = bounded(0, min=0, max=MAX_PRICE_U_PER_KWH)  # beyond a connection limit
    grid_use_penalty_u_per_kwh: int = bounded(0, min=0, max=MAX_PRICE_U_PER_KWH)  # imports beyond contract
    self_consumption_bonus_u_per_kwh: int = bounded(0, min=0, max=MAX_PRICE_U_PER_KWH)  # own PV used
    exclusion_after_violations: int = bounded(0, min=0, max=10_000)  # within the window; 0: never
    exclusion_window_slots: int = bounded(96, min=1, max=35_040)
    exclusion_slots: int = bounded(96, min=1, max=35_040)  # how long an exclusion lasts
    min_balance_u: int | None = bounded(None, min=-MAX_MONEY_U, max=0)  # exclude below this balance


@dataclass(frozen=True)
class LedgerRules:
    """Proof of work and block size (see ledger/difficulty.py)."""

    difficulty_bits: int = bounded(12, min=0, max=32)  # at the start, and always when not retargeting
    target_mine_ms: int = bounded(0, min=0, max=600_000)  # retarget towards this mining time; 0: fixed
    retarget_every: int = bounded(16, min=1, max=10_000)  # blocks per retarget window
    min_difficulty_bits: int = bounded(0, min=0, max=32)
    max_difficulty_bits: int = bounded(28, min=0, max=32)
    max_tx_per_block: int = bounded(10_000, min=2, max=1_000_000)  # the rest overflows into the next

    def __post_init__(self) -> None:
        if not self.min_difficulty_bits <= self.difficulty_bits <= self.max_difficulty_bits:
            raise ValueError(f"difficulty_bits {self.difficulty_bits} is outside min_difficulty_bits.."
                             f"max_difficulty_bits ({self.min_difficulty_bits}..{self.max_difficulty_bits})")


@dataclass(frozen=True)
class Forecasting:
    """Federated rounds for the edge forecasters (docs/forecasting.md). At every slot start
    that is a multiple of ``round_slots`` the households share statistics of their own
    history; at the next slot boundary the coordinator pools each forecaster that at
    least ``min_members`` shared, pulled toward the current model with ``prior_weight``
    (the ridge strength, in windows' units), and releases it. 0 switches rounds off."""

    round_slots: int = bounded(0, min=0, max=35_040)
    min_members: int = bounded(3, min=2, max=10_000)
    min_windows: int = bounded(96, min=1, max=35_040)  # a member shares from this many windows on
    prior_weight: int = bounded(3000, min=1, max=10**9)

    def __post_init__(self) -> None:
        if self.round_slots == 1:
            raise ValueError("round_slots: must be 0 (off) or at least 2 (share, then pool)")

    @property
    def enabled(self) -> bool:
        return self.round_slots > 0

    def round_of(self, slot: int) -> int | None:
        """The round that starts at ``slot``, or None if none does."""
        if not self.enabled or slot % self.round_slots:
            return None
        return slot // self.round_slots


@dataclass(frozen=True)
class Community:
    id: str = bounded("demo", pattern=ID)
    coordinator_id: str = bounded("coordinator", pattern=ID)
    coordinator_key: str = bounded("", pattern=f"({HASH})?")
    market: Market = field(default_factory=Market)
    tariff: Tariff = field(default_factory=Tariff)
    grid: PowerLimits = field(default_factory=PowerLimits)
    fees: Fees = field(default_factory=Fees)
    rules: Rules = field(default_factory=Rules)
    ledger: LedgerRules = field(default_factory=LedgerRules)
    forecasting: Forecasting = field(default_factory=Forecasting)
    members: tuple[Member, ...] = ()

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for index, member in enumerate(self.members):
            if member.id in seen:
                raise ValueError(f"members[{index}].id: duplicate member {member.id!r}")
            if member.id in (self.coordinator_id, "grid"):
                raise ValueError(f"members[{index}].id: {member.id!r} is reserved")
            seen.add(member.id)

    def member(self, member_id: str) -> Member | None:
        return self._by_id.get(member_id)

    @functools.cached_property
    def _by_id(self) -> dict[str, Member]:
        return {member.id: member for member in self.members}
