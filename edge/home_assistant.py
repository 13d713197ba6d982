"""Home Assistant MQTT discovery for a household: what its agent publishes so that Home
Assistant shows the meter, PV, battery and trades without any configuration there.

Pure: configuration and readings in, (topic, payload) pairs out; the agent publishes them
(retained) on every connection and its state on every slot and answer.

One Home Assistant device per household (identifiers ``gridmesh_<community>_<device>``),
one sensor per value, each a discovery config on
``<prefix>/sensor/<device>/<object>/config`` pointing at the household's one state topic
``<prefix>/sensor/<device>/state`` (a small JSON object, retained, so Home Assistant has
values straight after a restart) and at the agent's own status topic for availability
(``online``; ``offline`` by its last will). Integers in the state keep gridmesh's units
(W, Wh, micro-units); the configs' templates turn money into the currency.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from broker.codec import canonical_json
from broker.messages import Award, Settlement
from broker.topics import HomeAssistantTopics, Topics
from broker.units import U_PER_UNIT
from edge.readings import Readings

MANUFACTURER = "gridmesh"


@dataclass(frozen=True)
class Sensor:
    """One entity, ``object_id`` in its topics: ``key`` in the state JSON, shown as ``name``."""

    object_id: str
    key: str
    name: str
    unit: str | None
    device_class: str | None
    state_class: str | None
    money: bool = False  # micro-units in the state, the currency in Home Assistant
    precision: int | None = None


# The household's own values; PV and battery only where it has them.
METER = (
    Sensor("grid_power", "grid_power_w", "Grid power", "W", "power", "measurement"),
    Sensor("grid_import", "grid_import_wh", "Energy imported", "Wh", "energy", "total_increasing"),
    Sensor("grid_export", "grid_export_wh", "Energy exported", "Wh", "energy", "total_increasing"),
)
PV = (Sensor("pv_power", "pv_power_w", "PV power", "W", "power", "measurement"),)
BATTERY = (
    Sensor("battery_soc", "battery_soc_pct", "Battery state of charge", "%", "battery", "measurement"),
    Sensor("battery_power", "battery_power_w", "Battery power", "W", "power", "measurement"),
)
# What the market did for it: the last award (Wh bought, negative when sold, and its
# price) and the last slot's bill.
TRADES = (
    Sensor("award_energy", "award_energy_wh", "Last award energy", "Wh", "energy", None),
    Sensor("award_price", "award_price_u_per_kwh", "Last award price", "{currency}/kWh", None, "measurement",
           money=True, precision=4),
    Sensor("bill", "bill_u", "Last slot bill", "{currency}", "monetary", None, money=True, precision=4),
)


@dataclass(frozen=True)
class HouseholdState:
    """What the state topic carries (None: not known yet, or the device did not answer)."""

    t_s: int | None = None
    grid_power_w: int | None = None
    grid_import_wh: int | None = None
    grid_export_wh: int | None = None
    pv_power_w: int | None = None
    battery_soc_pct: int | None = None
    battery_power_w: int | None = None
    award_slot: int | None = None
    award_energy_wh: int | None = None
    award_price_u_per_kwh: int | None = None
    bill_slot: int | None = None
    bill_u: int | None = None

    def with_readings(self, readings: Readings) -> HouseholdState:
        meter, inverter, battery = readings.meter, readings.inverter, readings.battery
        return dataclasses.replace(
            self, t_s=readings.t_s,
            grid_power_w=meter.power_w if meter else None,
            grid_import_wh=meter.import_wh if meter else None,
            grid_export_wh=meter.export_wh if meter else None,
            pv_power_w=inverter.pv_power_w if inverter else None,
            battery_soc_pct=battery.soc_pct if battery else None,
            battery_power_w=battery.power_w if battery else None,
        )

    def with_award(self, award: Award) -> HouseholdState:
        if self.award_slot is not None and award.slot < self.award_slot:
            return self  # an old answer sent again
        return dataclasses.replace(self, award_slot=award.slot, award_energy_wh=award.contracted_wh,
                                   award_price_u_per_kwh=award.price_u_per_kwh)

    def with_settlement(self, settlement: Settlement) -> HouseholdState:
        if self.bill_slot is not None and settlement.slot < self.bill_slot:
            return self
        return dataclasses.replace(self, bill_slot=settlement.slot, bill_u=settlement.bill_u)

    def payload(self) -> bytes:
        return canonical_json(dataclasses.asdict(self))


@dataclass(frozen=True)
class Discovery:
    """A household's discovery: which sensors, under which names and topics."""

    device: str
    community: str
    role: str = "prosumer"
    has_pv: bool = False
    has_battery: bool = False
    prefix: str = "homeassistant"
    name: str = ""  # the device's name in Home Assistant; default "gridmesh <device>"
    currency: str = "EUR"
    version: str = ""

    @property
    def topics(self) -> HomeAssistantTopics:
        return HomeAssistantTopics(self.prefix)

    @property
    def state_topic(self) -> str:
        return self.topics.state(self.device)

    def sensors(self) -> tuple[Sensor, ...]:
        return (*METER, *(PV if self.has_pv else ()), *(BATTERY if self.has_battery else ()), *TRADES)

    def configs(self) -> list[tuple[str, bytes]]:
        """Every sensor's (discovery topic, config payload)."""
        ident = f"gridmesh_{self.community}_{self.device}"
        device = {
            "identifiers": [ident], "name": self.name or f"gridmesh {self.device}",
            "manufacturer": MANUFACTURER, "model": f"edge agent ({self.role})",
        }
        origin: dict[str, object] = {"name": MANUFACTURER}
        if self.version:
            device["sw_version"] = origin["sw_version"] = self.version
        availability = [{
            "topic": Topics(self.community).device(self.device, "status"),
            "value_template": "{{ value_json.state }}",
            "payload_available": "online", "payload_not_available": "offline",
        }]
        out = []
        for sensor in self.sensors():
            config: dict[str, object] = {
                "name": sensor.name,
                "unique_id": f"{ident}_{sensor.object_id}",
                "state_topic": self.state_topic,
                "value_template": _template(sensor),
                "availability": availability,
                "device": device,
                "origin": origin,
            }
            if sensor.unit is not None:
                config["unit_of_measurement"] = sensor.unit.format(currency=self.currency)
            if sensor.device_class is not None:
                config["device_class"] = sensor.device_class
            if sensor.state_class is not None:
                config["state_class"] = sensor.state_class
            if sensor.precision is not None:
                config["suggested_display_precision"] = sensor.precision
            out.append((self.topics.config(self.device, sensor.object_id), canonical_json(config)))
        return out


class HouseholdFeed:
    """A household's feed as its agent runs: the discovery configs, and the state topic's
    (topic, payload) after each reading and each answer, which the agent publishes retained."""

    def __init__(self, discovery: Discovery) -> None:
        self.discovery = discovery
        self.state = HouseholdState()

    def configs(self) -> list[tuple[str, bytes]]:
        return self.discovery.configs()

    def on_readings(self, readings: Readings) -> tuple[str, bytes]:
        self.state = self.state.with_readings(readings)
        return self.discovery.state_topic, self.state.payload()

    def on_answer(self, answer: Award | Settlement) -> tuple[str, bytes]:
        self.state = (self.state.with_award(answer) if isinstance(answer, Award)
                      else self.state.with_settlement(answer))
        return self.discovery.state_topic, self.state.payload()


def _template(sensor: Sensor) -> str:
    """Home Assistant's Jinja for the value: ``None`` (unknown) where the state has null."""
    value = f"value_json.{sensor.key}"
    if sensor.money:
        return f"{{{{ none if {value} is none else {value} / {U_PER_UNIT} }}}}"
    return f"{{{{ {value} }}}}"
