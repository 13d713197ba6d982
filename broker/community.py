"""The community's rules, shared by every agent and the coordinator.

Read from the ``community:`` section of a configuration file. Limits are powers in W;
their energy per slot follows from the slot length.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from broker.clock import SlotTimes
from broker.messages import HASH, ID, MAX_PRICE_U_PER_KWH
from broker.schema import bounded
from broker.units import energy_wh_for

ROLES = ("prosumer", "consumer", "pv", "storage")


@dataclass(frozen=True)
class Tariff:
    """The grid's prices: what importing costs and what feeding in earns."""

    import_u_per_kwh: int = bounded(300_000, min=0, max=MAX_PRICE_U_PER_KWH)
    feedin_u_per_kwh: int = bounded(80_000, min=0, max=MAX_PRICE_U_PER_KWH)

    def __post_init__(self) -> None:
        if self.feedin_u_per_kwh > self.import_u_per_kwh:
            raise ValueError(
                f"feedin_u_per_kwh ({self.feedin_u_per_kwh}) must not exceed "
                f"import_u_per_kwh ({self.import_u_per_kwh})"
            )


@dataclass(frozen=True)
class PowerLimits:
    """Import and export limits of a connection (a member's, or the whole feeder's)."""

    import_limit_w: int = bounded(200_000, min=0, max=10**9)
    export_limit_w: int = bounded(150_000, min=0, max=10**9)

    def import_limit_wh(self, slot_s: int) -> int:
        return energy_wh_for(self.import_limit_w, slot_s)

    def export_limit_wh(self, slot_s: int) -> int:
        return energy_wh_for(self.export_limit_w, slot_s)


def _member_limits() -> PowerLimits:
    # 10 kWh import and 4 kWh export per 30 minutes.
    return PowerLimits(import_limit_w=20_000, export_limit_w=8_000)


@dataclass(frozen=True)
class Member:
    """One registered device: who it is, its key, its role and its connection limits."""

    id: str = bounded(pattern=ID)
    public_key: str = bounded(pattern=HASH)
    role: str = bounded("prosumer", choices=ROLES)
    limits: PowerLimits = field(default_factory=_member_limits)


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
class LedgerRules:
    difficulty_bits: int = bounded(12, min=0, max=32)


@dataclass(frozen=True)
class Community:
    id: str = bounded("demo", pattern=ID)
    coordinator_id: str = bounded("coordinator", pattern=ID)
    coordinator_key: str = bounded("", pattern=f"({HASH})?")
    market: Market = field(default_factory=Market)
    tariff: Tariff = field(default_factory=Tariff)
    grid: PowerLimits = field(default_factory=PowerLimits)
    ledger: LedgerRules = field(default_factory=LedgerRules)
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
