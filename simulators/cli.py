"""``gridmesh testbed``: run a whole community on this machine."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from broker.launcher import BrokerError
from gridmesh import aio
from gridmesh.cli import UsageError
from gridmesh.logs import add_log_arguments, configure_logging
from simulators.results import Summary
from simulators.run_folder import RunFolderError
from simulators.run_results import audit_run, mark_finished, record_run
from simulators.testbed import RunArtifacts, run_testbed
from simulators.testbed_config import load_testbed_config
from simulators.testbed_errors import TestbedError

if TYPE_CHECKING:
    from simulators.compare import Comparison

EXAMPLE = """examples:
  gridmesh testbed                                  # 20 households, one day, virtual clock
  gridmesh testbed --households 5 --slots 8 --out runs/small
  gridmesh testbed --config community.yaml --seed 7
  gridmesh testbed --clock realtime --speed 60      # one virtual minute per wall second
  gridmesh testbed --slots 200 --federated-round-slots 96   # forecasters learn from each day
"""


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "testbed", help="run a whole community on this machine",
        description="Start a broker, simulated households on Modbus TCP, edge agents and a "
        "coordinator, run the market for a number of slots and write the results.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, help="testbed YAML file (community and testbed)")
    parser.add_argument("--households", type=int, help="number of households (default 20)")
    parser.add_argument("--slots", type=int, help="market slots to run (default 96: one day)")
    parser.add_argument("--seed", type=int, help="seed for households and keys (default 1)")
    parser.add_argument("--feeder", help="bundled SimBench feeder (default 1-LV-rural3--0-sw)")
    parser.add_argument("--feeder-data", help="folder with the feeder's extract "
                        "(simulators/extract_profiles.py --out); default: the bundled ones")
    parser.add_argument("--start", help="start, UTC: YYYY-MM-DD or YYYY-MM-DDTHH:MM (default 2016-06-06)")
    parser.add_argument("--forecaster", choices=("onnx", "seasonal-naive", "perfect"),
                        help="the agents' forecaster (default onnx; perfect: the true future, for studies)")
    parser.add_argument("--prices-csv", help="dynamic grid prices: start_utc,import_u_per_kwh,"
                        "feedin_u_per_kwh (micro-units per kWh); 'bundled': the 2016 series shipped")
    parser.add_argument("--planner", choices=("horizon", "slot"),
                        help="the agents' battery planning (default horizon: over the forecast horizon "
                        "when prices change; slot: one slot ahead)")
    parser.add_argument("--community-battery-wh", type=int,
                        help="add a battery the community owns, of this capacity (default 0: none)")
    parser.add_argument("--federated-round-slots", type=int,
                        help="federated forecaster rounds every N slots: households share statistics, "
                        "the coordinator releases pooled models (default 0: the community's setting)")
    parser.add_argument("--external-agents", metavar="ID,...",
                        help="households whose agent runs outside the testbed (an installed bundle, a "
                        "device): their configuration and key are written, RUN/external.json names "
                        "them and the run waits for them")
    parser.add_argument("--metrics", action="store_true", default=None,
                        help="serve Prometheus metrics from the coordinator and each agent process on "
                        "local ports, named in RUN/metrics.json (docs/integrations.md)")
    parser.add_argument("--clock", choices=("virtual", "realtime"), help="default virtual")
    parser.add_argument("--speed", type=int, help="virtual seconds per wall second (realtime)")
    parser.add_argument("--broker", choices=("auto", "mosquitto", "embedded"),
                        help="which MQTT broker to start (default auto: mosquitto if installed)")
    parser.add_argument("--broker-auth", choices=("none", "tls", "password"),
                        help="lock the broker down as a community's own: TLS with client certificates "
                        "or passwords and the ACL (mosquitto only; default none)")
    parser.add_argument("--out", type=Path, help="output folder (default runs/<shape>-seed<N>)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--compare", action="store_true",
                        help="also run the baselines and the community's optimum on the same data")
    add_log_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    configure_logging(args.log_level, args.log_format)  # and its participants' (the environment)
    overrides = {name: getattr(args, name) for name in
                 ("households", "slots", "seed", "feeder", "feeder_data", "start", "clock", "speed", "broker",
                  "community_battery_wh", "prices_csv", "forecaster", "planner", "broker_auth", "metrics")}
    overrides["federated_round_slots"] = args.federated_round_slots
    if args.external_agents is not None:
        names = args.external_agents.split(",")
        overrides["external_agents"] = [name.strip() for name in names if name.strip()]
    config = load_testbed_config(args.config, overrides)
    tb = config.testbed
    out: Path = args.out or Path("runs") / f"{tb.households}h-{tb.slots}s-seed{tb.seed}"
    if not args.json:
        print(f"gridmesh testbed: {tb.households} households, {tb.slots} slots, seed {tb.seed}, "
              f"{tb.clock} clock -> {out}", flush=True)
    try:
        artifacts = aio.run(run_testbed(config, out))
    except (TestbedError, BrokerError) as exc:
        raise UsageError(str(exc)) from None

    audit = audit_run(out, artifacts.replicas)
    summary = record_run(out, artifacts, tb.slots, audit)
    comparison = None
    if args.compare:
        comparison = _compare(artifacts, summary, tb.slots)
        (out / "compare.json").write_text(json.dumps(comparison.as_dict(), indent=2) + "\n")
    mark_finished(out, tb, audit)
    report = _write_report(out)
    if args.json:
        print(json.dumps({**summary.__dict__, **({"compare": comparison.as_dict()} if comparison else {})}))
    else:
        print("\n".join(summary.lines()))
        print(f"ledger audit      {audit.text}")
        if artifacts.replicas and not audit.failed:
            print(f"replicas          {len(artifacts.replicas)}, each verified every block and holds the "
                  "coordinator's head")
        if comparison is not None:
            print("\n".join(comparison.lines()))
        print(f"results           {out}/results.db, {out}/*.csv, {out}/ledger.db")
        print(f"report            {report}")
    return 1 if audit.failed else 0


def _write_report(out: Path) -> Path:
    from simulators.report.cli import write_run_report

    try:
        return write_run_report(out)
    except RunFolderError as exc:
        raise UsageError(f"the run finished but its report could not be written: {exc}") from None


def _compare(artifacts: RunArtifacts, summary: Summary, slots: int) -> Comparison:
    from simulators.compare import Scenario, compare
    from simulators.optimum import OptimumError

    slot_s = artifacts.community.market.slot_s
    first_s, end_s = artifacts.first_slot * slot_s, (artifacts.first_slot + slots) * slot_s
    at_start: dict[str, int] = {}
    at_end: dict[str, int] = {}
    for record in artifacts.records:
        if record.battery_remote is None:
            continue
        if record.flows.end_s <= first_s:
            at_start[record.household] = record.stored_wh
        if record.flows.end_s <= end_s:
            at_end[record.household] = record.stored_wh
    stored_change = sum(at_end[h] - at_start[h] for h in at_end if h in at_start)
    as_run = Scenario(summary.bill_u, summary.grid_import_wh, summary.grid_export_wh, stored_change)
    try:
        return compare(artifacts.households, artifacts.profiles, artifacts.community, artifacts.first_slot,
                       slots, as_run)
    except OptimumError as exc:
        raise UsageError(f"--compare: {exc}") from None
