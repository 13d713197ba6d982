"""The testbed's configuration: the community's rules and the run's shape.

    community:            # the market's rules (broker/community.py); members are generated
      tariff: {import_u_per_kwh: 300000, feedin_u_per_kwh: 80000}
    testbed:
      households: 20
      slots: 96
      seed: 1
      start: 2016-06-06   # UTC, inside the bundled profile extract; or 2016-06-06T10:00
      feeder: 1-LV-rural3--0-sw   # a bundled SimBench feeder (see simulators/data)
      feeder_data: ""     # or a folder of simulators/extract_profiles.py output holding it
      prices_csv: ""      # dynamic grid prices (start_utc,import_u_per_kwh,feedin_u_per_kwh);
                          # "bundled": the 2016 series in simulators/data (extract_prices.py)
      prosumer_pct: 50
      pv_only_pct: 0      # households with PV and no battery
      community_battery_wh: 0   # a battery the community owns (member s001); 0: none
      community_battery_w: 10000
      faults:             # devices that misbehave for a while (default: none)
        - {household: h003, device: meter, fault: failure, from_slot: 10, slots: 4}
      broker_restarts: [] # slots (from the first, as faults) whose two ticks are each followed
                          # by stopping the broker and starting it again (docs/reliability.md)
      clock: virtual      # or realtime (with speed)
      speed: 1
      broker: auto        # auto, mosquitto or embedded
      broker_auth: none   # tls or password: a locked-down mosquitto (gridmesh deploy broker-config)
      member_limits: {import_limit_w: 20000, export_limit_w: 8000}   # each member's connection
      federated_round_slots: 0   # federated forecaster rounds every this many slots (0: the
                                 # community's forecasting.round_slots)
      external_agents: []  # households whose agent runs outside the testbed (RUN/external.json)
      metrics: false      # Prometheus endpoints on the coordinator and each agent process
                          # (RUN/metrics.json names them; docs/integrations.md#metrics-prometheus)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker.community import Community, PowerLimits, PricePoint, default_member_limits, read_price_csv
from broker.schema import bounded
from gridmesh.config import ConfigError, build, read_yaml
from simulators.device_farm import FAULT_NAMES
from simulators.profiles import bundled_feeders

BUNDLED_PRICES = Path(__file__).resolve().parent / "data" / "prices-2016-residual-load.csv"


def prices_path(value: str) -> Path:
    """A ``prices_csv`` setting as a file: ``bundled`` names the series gridmesh ships."""
    return BUNDLED_PRICES if value == "bundled" else Path(value)


@dataclass(frozen=True)
class FaultSpec:
    """A device that misbehaves for part of a run (see :class:`simulators.device_farm.DeviceFarm`);
    a ``counter_reset`` happens once, at ``from_slot``."""

    household: str = bounded(pattern=r"h\d{3,4}")
    device: str = bounded(choices=("meter", "inverter", "battery"))
    fault: str = bounded(choices=FAULT_NAMES)
    from_slot: int = bounded(0, min=0, max=35_040)  # counted from the run's first slot
    slots: int = bounded(1, min=1, max=35_040)

    def active(self, slot_index: int) -> bool:
        return self.from_slot <= slot_index < self.from_slot + self.slots


@dataclass(frozen=True)
class TestbedSection:
    households: int = bounded(20, min=1, max=1000)
    slots: int = bounded(96, min=1, max=35_040)
    seed: int = bounded(1, min=0, max=2**31)
    start: str = bounded("2016-06-06", pattern=r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2})?")
    feeder: str = bounded("1-LV-rural3--0-sw", max_len=64)  # a bundled SimBench feeder
    feeder_data: str = bounded("", max_len=4096)  # a folder with other feeders' extracts
    prices_csv: str = bounded("", max_len=4096)  # dynamic grid prices for the community's tariff
    prosumer_pct: int = bounded(50, min=0, max=100)
    pv_only_pct: int = bounded(0, min=0, max=100)  # PV without a battery
    battery_ramp_w_per_s: int = bounded(0, min=0, max=1_000_000)  # 0: batteries change power at once
    community_battery_wh: int = bounded(0, min=0, max=10_000_000)  # 0: no community battery
    community_battery_w: int = bounded(10_000, min=1, max=10_000_000)
    clock: str = bounded("virtual", choices=("virtual", "realtime"))
    speed: int = bounded(1, min=1, max=86_400)
    broker: str = bounded("auto", choices=("auto", "mosquitto", "embedded"))
    # tls, password: mosquitto locked down as a community's own (simulators/testbed_broker.py)
    broker_auth: str = bounded("none", choices=("none", "tls", "password"))
    agent_processes: int = bounded(0, min=0, max=64)  # 0: one per 50 households
    member_limits: PowerLimits = field(default_factory=default_member_limits)  # each member's connection
    # the agents' forecaster; perfect: each reads its household's true future (a study's upper bound)
    forecaster: str = bounded("onnx", choices=("onnx", "seasonal-naive", "perfect"))
    planner: str = bounded("horizon", choices=("horizon", "slot"))  # the agents' battery planning
    replicas: int = bounded(0, min=0, max=8)  # independent ledger replicas following the run (r1, r2, ...)
    # federated forecaster rounds every this many slots; 0: as community.forecasting.round_slots says
    federated_round_slots: int = bounded(0, min=0, max=35_040)
    faults: tuple[FaultSpec, ...] = ()
    # slot indexes (as faults count them) whose start and following gate closure are each
    # followed by a restart of the broker while the participants are at work
    broker_restarts: tuple[int, ...] = ()
    # households whose agent runs outside the testbed (an installed bundle, a real device):
    # the testbed writes their configuration and key, starts no agent for them and waits
    external_agents: tuple[str, ...] = ()
    # Prometheus endpoints on the coordinator and each agent process, on free local ports
    metrics: bool = False

    def __post_init__(self) -> None:
        try:
            dt.datetime.fromisoformat(self.start)
        except ValueError:
            raise ValueError(f"start: {self.start!r} is not a valid date or date and time") from None
        if self.feeder_data:
            found = bundled_feeders(Path(self.feeder_data)) if Path(self.feeder_data).is_dir() else None
            if found is None:
                raise ValueError(f"feeder_data: {self.feeder_data!r} is not a folder")
            if self.feeder not in found:
                raise ValueError(f"feeder: {self.feeder!r} has no feeder-{self.feeder}.csv and "
                                 f"profiles-{self.feeder}.csv in {self.feeder_data} (found: "
                                 f"{', '.join(found) or 'none'})")
        elif self.feeder not in bundled_feeders():
            raise ValueError(f"feeder: {self.feeder!r} is not bundled (bundled: "
                             f"{', '.join(bundled_feeders())})")
        for index, fault in enumerate(self.faults):
            number = int(fault.household[1:])
            if not 1 <= number <= self.households:
                raise ValueError(f"faults[{index}].household: {fault.household} is not one of "
                                 f"h001..h{self.households:03d}")
        for index, slot in enumerate(self.broker_restarts):
            if not 0 <= slot < self.slots:
                raise ValueError(f"broker_restarts[{index}]: slot {slot} is not in the run "
                                 f"(0..{self.slots - 1})")
        if self.prosumer_pct + self.pv_only_pct > 100:
            raise ValueError(f"pv_only_pct: {self.pv_only_pct} with prosumer_pct {self.prosumer_pct} "
                             "is more than 100 %")
        if self.federated_round_slots == 1:
            raise ValueError("federated_round_slots: must be 0 (off) or at least 2 (share, then pool)")
        if self.broker_auth != "none" and self.broker == "embedded":
            raise ValueError(f"broker_auth: {self.broker_auth} needs mosquitto: the embedded broker has "
                             "no TLS, passwords or ACL")
        for index, name in enumerate(self.external_agents):
            known = re.fullmatch(r"h(\d{3,4})", name) and 1 <= int(name[1:]) <= self.households
            if not known and not (name == "s001" and self.community_battery_wh):
                raise ValueError(f"external_agents[{index}]: {name!r} is not one of "
                                 f"h001..h{self.households:03d}")

    @property
    def start_s(self) -> int:
        """The run's start in UTC; the first slot is the one holding it."""
        start = dt.datetime.fromisoformat(self.start).replace(tzinfo=dt.UTC)
        return int(start.timestamp())

    @property
    def processes(self) -> int:
        return self.agent_processes or max(1, min(4, (self.households + 49) // 50))


@dataclass(frozen=True)
class TestbedConfig:
    community: Community = field(default_factory=Community)
    testbed: TestbedSection = field(default_factory=TestbedSection)

    def __post_init__(self) -> None:
        if self.community.members:
            raise ValueError("community.members: the testbed generates its members; leave it out")
        if self.community.coordinator_key:
            raise ValueError("community.coordinator_key: the testbed makes its own keys")


def load_testbed_config(path: Path | None, overrides: dict[str, Any]) -> TestbedConfig:
    """Read ``path`` (or the defaults) and apply command-line ``overrides`` to ``testbed``."""
    source = str(path) if path else "defaults"
    data = read_yaml(path) if path else {}
    config = build(TestbedConfig, data, source)
    changes = {k: v for k, v in overrides.items() if v is not None}
    if changes:
        merged = {**data.get("testbed", {}), **changes}
        try:
            section = build(TestbedSection, merged, "command line")
        except ConfigError as exc:
            key, problem = exc.path, exc.problem
            if not key and ": " in problem:  # a check across fields names its field first
                key, problem = problem.split(": ", 1)
            raise ConfigError("command line", f"--{key.replace('_', '-')}", problem) from None
        config = dataclasses.replace(config, testbed=section)
    if config.testbed.prices_csv:
        where = "--prices-csv" if "prices_csv" in changes else "testbed.prices_csv"
        try:
            points = read_price_csv(prices_path(config.testbed.prices_csv))
        except (OSError, ValueError) as exc:
            raise ConfigError(source if where.startswith("testbed") else "command line", where,
                              str(exc)) from None
        tariff = dataclasses.replace(config.community.tariff, dynamic=_run_span(points, config.testbed,
                                                                                 config.community.market.slot_s))
        config = dataclasses.replace(config, community=dataclasses.replace(config.community, tariff=tariff))
    return config


PRICE_DAYS_BEFORE, PRICE_DAYS_AFTER = 8, 2  # what the agents' price forecasts look back and ahead


def _run_span(points: tuple[PricePoint, ...], tb: TestbedSection, slot_s: int) -> tuple[PricePoint, ...]:
    """The price points a run can use: from a week and a day before its start (the price
    forecasts look back that far) to two days past its end, and the point in force at the
    span's start. A year of hourly prices would otherwise travel in every configuration."""
    first = tb.start_s - PRICE_DAYS_BEFORE * 86_400
    last = tb.start_s + tb.slots * slot_s + PRICE_DAYS_AFTER * 86_400
    kept = [p for p in points if first < p.start_s <= last]
    before = [p for p in points if p.start_s <= first]
    return (*before[-1:], *kept) if before or kept else points
