"""Every kind of device fault in one testbed run, and what the agents did about it.

Eight households, seven with a fault on one device for slots 2..4 of eight (a meter
counter reset happens once, at slot 2, on a consumer's meter: a self-consuming
prosumer's counters may stand at zero), one without. Each test reads the run's output
for its household: whether the agent kept running and kept reporting what it could,
made no commitment on stale data, kept its battery on its own self-consumption, and
commanded it again after a reconnect. Every report that was sent must equal the physics' net
energy for its slot: a fault may cost a report, never a wrong one.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gridmesh.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.broker]
FAULTY = (2, 3, 4)  # slot indexes with the fault on
CONFIG = """\
testbed:
  households: 8
  slots: 8
  seed: 3                 # h003 and h006 are consumers, the others prosumers
  start: 2016-06-06T10:00
  prosumer_pct: 75
  faults:
    - {household: h001, device: meter, fault: timeout, from_slot: 2, slots: 3}
    - {household: h002, device: battery, fault: busy, from_slot: 2, slots: 3}
    - {household: h003, device: meter, fault: frozen, from_slot: 2, slots: 3}
    - {household: h004, device: meter, fault: slow, from_slot: 2, slots: 3}
    - {household: h005, device: meter, fault: dropped, from_slot: 2, slots: 3}
    - {household: h006, device: meter, fault: counter_reset, from_slot: 2}
    - {household: h007, device: inverter, fault: failure, from_slot: 2, slots: 3}
"""


class Run:
    def __init__(self, out: Path) -> None:
        self.db = out / "results.db"
        with sqlite3.connect(self.db) as conn:
            self.first = conn.execute("SELECT MIN(slot) FROM household_slots").fetchone()[0]

    def rows(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(sql, args).fetchall()

    def metered(self, household: str) -> list[object]:
        """The metered energy settled per slot (None: no report)."""
        return [m for (m,) in self.rows(
            "SELECT metered_wh FROM household_slots WHERE household = ? ORDER BY slot", household)]

    def remote(self, household: str) -> list[object]:
        """Per slot, whether the battery followed a setpoint (1) or the household, on its own (0)."""
        return [r for (r,) in self.rows(
            "SELECT battery_remote FROM household_slots WHERE household = ? ORDER BY slot", household)]

    def order_slots(self, household: str) -> set[int]:
        return {int(s) - self.first for (s,) in self.rows(  # type: ignore[call-overload]
            "SELECT slot FROM orders WHERE kind = 'order' AND device = ?", household)}

    def stat(self, household: str, name: str) -> int:
        found = self.rows("SELECT value FROM agent_stats WHERE household = ? AND name = ?", household, name)
        return int(found[0][0]) if found else 0  # type: ignore[call-overload]

    def reports_match_the_physics(self, household: str) -> bool:
        wrong = self.rows(
            "SELECT slot FROM household_slots WHERE household = ? AND metered_wh IS NOT NULL "
            "AND metered_wh != import_wh - export_wh", household)
        return not wrong


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("faults")
    (folder / "faults.yaml").write_text(CONFIG)
    out = folder / "run"
    assert main(["testbed", "--config", str(folder / "faults.yaml"), "--out", str(out), "--json"]) == 0
    return Run(out)


def test_a_meter_that_stops_answering_costs_reports_and_orders_until_it_answers_again(run: Run) -> None:
    # No reading at the starts of slots 2..4: no report for slots 1..4 (each needs the
    # reading at both ends), no order for slots 3..5; the battery self-consumes throughout.
    assert run.metered("h001") == [run.metered("h001")[0], None, None, None, None,
                                   *run.metered("h001")[5:]]
    assert None not in run.metered("h001")[5:] and run.reports_match_the_physics("h001")
    assert run.stat("h001", "readings_stale") == 3 and run.stat("h001", "device_failures") == 3
    assert not run.order_slots("h001") & {3, 4, 5}
    assert run.remote("h001") == [0] * 8


def test_a_battery_answering_busy_is_left_to_itself_and_commanded_again_after(run: Run) -> None:
    # The meter still reads: every slot is reported. Once the battery answers again the
    # agent writes its command again (self-consumption, its setpoint switch off).
    assert None not in run.metered("h002") and run.reports_match_the_physics("h002")
    assert run.stat("h002", "readings_stale") == 3
    assert not run.order_slots("h002") & {3, 4, 5}
    assert run.remote("h002") == [0] * 8
    assert run.stat("h002", "battery_reapplied") >= 1


def test_a_frozen_meter_is_recognised_and_its_values_never_reported(run: Run) -> None:
    # Frozen at slot 2's start: the readings at the starts of 3 and 4 are copies of it, and
    # slot 4 ends on a live reading but starts on a frozen one, so slots 2..4 go unreported.
    assert run.stat("h003", "meter_frozen") == 2
    assert [m is None for m in run.metered("h003")] == [False, False, True, True, True, False, False, False]
    assert run.reports_match_the_physics("h003")  # the frozen period is not lumped into one slot
    # The order for slot 3 was planned on slot 2's reading, which was still live; the
    # orders for 4 and 5 would have been planned on frozen values, so there are none.
    assert not run.order_slots("h003") & {4, 5} and {3, 6} <= run.order_slots("h003")


def test_a_meter_counter_that_resets_costs_one_report(run: Run) -> None:
    assert run.stat("h006", "counter_reset") == 1
    assert [m is None for m in run.metered("h006")] == [False, True, False, False, False, False, False, False]
    assert run.reports_match_the_physics("h006")
    assert run.stat("h006", "readings_stale") == 0
    assert {3, 4, 5} <= run.order_slots("h006")  # a consumer buys every slot, the reset slot too


def test_a_dropped_connection_is_reestablished_and_the_battery_commanded_again(run: Run) -> None:
    # The whole Modbus endpoint is gone: nothing reads and nothing can be commanded;
    # after reconnecting the agent writes the battery's command again.
    assert run.stat("h005", "readings_stale") == 3
    assert run.metered("h005")[1:5] == [None] * 4 and None not in run.metered("h005")[5:]
    assert run.reports_match_the_physics("h005")
    assert not run.order_slots("h005") & {3, 4, 5}
    assert run.remote("h005") == [0] * 8
    assert run.stat("h005", "battery_reapplied") >= 1


def test_a_slow_meter_within_the_timeout_costs_nothing(run: Run) -> None:
    assert run.stat("h004", "readings_stale") == 0 and run.stat("h004", "device_failures") == 0
    assert None not in run.metered("h004") and run.reports_match_the_physics("h004")


def test_a_failing_inverter_leaves_the_meter_reporting_but_stops_commitments(run: Run) -> None:
    assert None not in run.metered("h007") and run.reports_match_the_physics("h007")
    assert run.stat("h007", "readings_stale") == 3 and run.stat("h007", "device_failures") == 3
    assert not run.order_slots("h007") & {3, 4, 5}
    assert run.remote("h007") == [0] * 8


def test_the_household_without_a_fault_saw_none(run: Run) -> None:
    assert run.stat("h008", "readings_stale") == 0 and run.stat("h008", "device_failures") == 0
    assert None not in run.metered("h008") and run.reports_match_the_physics("h008")
    assert run.remote("h008") == [0] * 8
