"""Run one drill: a testbed run with the drill's strike, then every check on what it left
behind, as a :class:`~simulators.drill_report.DrillReport` (also ``RUN/drill.json``).

Each drill has a small default run (:data:`DEFAULTS`): a few households for six slots at
a time of day when peers trade, and for ``agent-kill`` a night with cheap power under a
time-of-use tariff, prosumers only and perfect forecasts, so that every battery runs on
its agent's setpoints. A configuration file (``--config``) replaces those defaults.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from broker.community import Tariff, TouPeriod
from broker.launcher import BrokerError
from simulators.clock_master import ClockStalled
from simulators.drill_checks import common_checks
from simulators.drill_control import DrillOptions, RunShape
from simulators.drill_evidence import gather, ledger_checks, metered_truth
from simulators.drill_report import Check, DrillReport
from simulators.drill_scenarios import DRILLS
from simulators.fleet import COMMUNITY_BATTERY_ID, household_id
from simulators.report.cli import write_run_report
from simulators.run_folder import RUN_MARKER, RunFolderError
from simulators.run_results import audit_run, mark_finished, record_run
from simulators.testbed import run_testbed
from simulators.testbed_config import TestbedConfig
from simulators.testbed_errors import TestbedError

TRADING_DAY: dict[str, Any] = {"households": 4, "slots": 6, "start": "2016-06-06T10:00"}
CHARGING_NIGHT: dict[str, Any] = {"households": 3, "slots": 6, "start": "2016-01-19T00:00",
                                  "prosumer_pct": 100, "forecaster": "perfect"}
DEFAULTS: dict[str, dict[str, Any]] = {
    "broker-outage": TRADING_DAY, "coordinator-kill": TRADING_DAY, "network-cut": TRADING_DAY,
    "agent-kill": CHARGING_NIGHT,
}
NIGHT_AND_PEAK = Tariff(300_000, 50_000, time_of_use=(
    TouPeriod("00:00", "06:00", 180_000), TouPeriod("17:00", "21:00", 450_000)))
MIN_SLOTS_AFTER = 3  # slots after the strike: the market resumes, a killed agent plans again


def with_drill_defaults(name: str, config: TestbedConfig) -> TestbedConfig:
    """``config`` (the defaults, no file given) with the drill's community rules."""
    if name != "agent-kill":
        return config
    return dataclasses.replace(config, community=dataclasses.replace(config.community, tariff=NIGHT_AND_PEAK))


def check_plan(name: str, config: TestbedConfig, options: DrillOptions) -> None:
    """TestbedError if the drill cannot run on ``config`` as asked."""
    tb = config.testbed
    if name not in DRILLS:
        raise TestbedError(f"unknown drill {name!r} (known: {', '.join(DRILLS)})")
    if not 1 <= options.at_slot <= tb.slots - MIN_SLOTS_AFTER:
        raise TestbedError(f"--at-slot {options.at_slot}: must be between 1 and {tb.slots - MIN_SLOTS_AFTER} "
                           f"(a slot before the drill strikes and {MIN_SLOTS_AFTER} after it, in {tb.slots})")
    if name == "agent-kill" and tb.households > 64:
        raise TestbedError("agent-kill runs every agent in a process of its own: at most 64 households")
    known = {household_id(i) for i in range(tb.households)}
    if tb.community_battery_wh:
        known.add(COMMUNITY_BATTERY_ID)
    if options.household and options.household not in known:
        raise TestbedError(f"--household {options.household}: not in this run (h001..h{tb.households:03d})")
    if options.household and options.household in tb.external_agents:
        raise TestbedError(f"--household {options.household}: its agent runs outside the testbed")


async def run_drill(name: str, config: TestbedConfig, out: Path, options: DrillOptions) -> DrillReport:
    """Run drill ``name``; TestbedError or BrokerError if the run could not even start."""
    check_plan(name, config, options)
    tb = config.testbed
    if name == "agent-kill":  # the killed agent alone in its process
        config = dataclasses.replace(config, testbed=dataclasses.replace(tb, agent_processes=tb.households))
    market = config.community.market
    first_slot = tb.start_s // market.slot_s
    shape = RunShape(config.community.id, first_slot, tb.slots, market.slot_s, market.gate_closure_s)
    control = DRILLS[name](options, shape)
    failure: Exception | None = None
    try:
        artifacts = await run_testbed(config, out, control)
    except (TestbedError, BrokerError, ClockStalled) as exc:
        if not control.agent_files:  # it never started: nothing to report on
            raise
        failure = exc
    finally:
        await control.close()
    report = DrillReport(name, control.describe(), str(out), control.events)
    if failure is not None:
        report.events.append(f"the run failed: {failure}")
        report.checks = [Check.of("the run reached its last tick", False, str(failure).splitlines()[0]),
                         *control.checks(out)]
    else:
        run_slots = range(first_slot, first_slot + tb.slots)
        truth = metered_truth(artifacts.records, market.slot_s)
        evidence = gather(out, run_slots, tuple(h.id for h in artifacts.households), control.strike_slot,
                          truth, control.excused, control.agent_files)
        report.checks = [Check.of("the run reached its last tick", True, f"{tb.slots} slot(s), "
                                  f"{artifacts.wall_s:.1f} s"),
                         *control.checks(out), *common_checks(evidence), *ledger_checks(out / "ledger.db")]
        # the run's results and report, as any run's: gridmesh report and replay work on it
        audit = audit_run(out, artifacts.replicas)
        record_run(out, artifacts, tb.slots, audit)
        mark_finished(out, tb, audit, drill=name)
        try:
            write_run_report(out)
        except RunFolderError as exc:
            report.events.append(f"the run's report could not be written: {exc}")
    if failure is not None:
        (out / RUN_MARKER).write_text(json.dumps({"status": "failed", "drill": name}) + "\n")
    report.write(out)
    return report
