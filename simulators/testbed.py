"""The testbed: a whole community on one machine, from devices to ledger.

One run starts a broker, serves every household's simulated devices over Modbus TCP
(in this process, where the physics runs), starts the coordinator and the edge agents
as separate processes with generated configuration files, and drives the virtual
clock. Afterwards it writes results.db and CSVs beside the ledger and prints a summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import shutil
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from broker.bus import Endpoint
from broker.community import Community, Member
from broker.identity import Identity
from broker.launcher import BrokerHandle
from broker.schema import to_dict
from broker.topics import Topics
from simulators.clock_master import ClockMaster, tick_times
from simulators.device_farm import (
    BATTERY_UNIT,
    INVERTER_UNIT,
    METER_UNIT,
    DeviceFarm,
    StepRecord,
    device_units,
)
from simulators.fault_control import FaultInbox, listening
from simulators.fleet import PROSUMER_BATTERY, community_battery, make_households
from simulators.physics import HouseholdSpec
from simulators.profiles import ProfileError, ProfileSet
from simulators.replicas import stop_replicas
from simulators.run_folder import RUN_MARKER
from simulators.supervisor import RunControl, Supervisor
from simulators.testbed_broker import start_testbed_broker
from simulators.testbed_config import FaultSpec, TestbedConfig, TestbedSection
from simulators.testbed_errors import TestbedError, tail
from simulators.testbed_metrics import HOST, MetricsPorts, announce_metrics

AGENT_STATS = "agents"  # each agent's counters, <device>.json
STATE = "state"  # each agent's state directory (its outbox), <device>/
EXTERNAL = "external.json"  # the broker and configuration files of agents run outside
ONLINE_S, EXTERNAL_ONLINE_S = 60.0, 600.0  # how long participants may take to come online


@dataclass
class RunArtifacts:
    out: Path
    households: tuple[HouseholdSpec, ...]
    community: Community
    first_slot: int
    profiles: ProfileSet
    records: list[StepRecord] = field(default_factory=list)
    broker_kind: str = ""
    wall_s: float = 0.0
    replicas: dict[str, str] = field(default_factory=dict)  # replica -> its head hash


def prepare_out_dir(out: Path) -> None:
    """Make ``out`` empty: a previous run there is replaced, anything else is refused."""
    if out.exists() and any(out.iterdir()):
        if not (out / RUN_MARKER).exists():
            raise TestbedError(f"{out} is not empty and holds no testbed run; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _community_with_members(
    config: TestbedConfig, households: tuple[HouseholdSpec, ...], coordinator: Identity
) -> tuple[Community, dict[str, Identity]]:
    seed = config.testbed.seed
    identities = {h.id: Identity.derived(h.id, seed) for h in households}
    members = tuple(
        Member(h.id, identities[h.id].public_key_hex, h.role, config.testbed.member_limits)
        for h in households
    )
    community = dataclasses.replace(
        config.community, members=members, coordinator_key=coordinator.public_key_hex
    )
    if config.testbed.federated_round_slots:  # federated forecasting rounds for this run
        forecasting = dataclasses.replace(community.forecasting,
                                          round_slots=config.testbed.federated_round_slots)
        community = dataclasses.replace(community, forecasting=forecasting)
    return community, identities


def write_configs(
    out: Path, community: Community, coordinator: Identity, identities: dict[str, Identity],
    households: tuple[HouseholdSpec, ...], farm: DeviceFarm, broker: Endpoint, last_slot: int,
    forecaster: str = "onnx", planner: str = "horizon",
    broker_auth: Callable[[str, Path], dict[str, str] | None] = lambda _principal, _folder: None,
    metrics_port: int | None = None,
) -> tuple[Path, list[Path]]:
    """Write RUN/config (community, keys, the coordinator's and each agent's file); their paths."""
    config_dir = out / "config"
    keys = config_dir / "keys"
    (config_dir / "agents").mkdir(parents=True)
    keys.mkdir()
    (config_dir / "community.yaml").write_text(yaml.safe_dump(to_dict(community), sort_keys=False))
    (keys / "coordinator.key").write_text(coordinator.private_hex() + "\n")
    coordinator_file = config_dir / "coordinator.yaml"
    coordinator_file.write_text(yaml.safe_dump({
        "coordinator": {"key_file": "keys/coordinator.key", "broker": str(broker),
                        "clock": "bus", "data_dir": str(out.resolve()),
                        **_auth(broker_auth(community.coordinator_id, config_dir)),
                        **({"metrics": {"port": metrics_port, "host": HOST}} if metrics_port else {})},
        "community": "community.yaml",
    }, sort_keys=False))
    agent_files = []
    for household in households:
        host, port = farm.endpoint(household.id)
        (keys / f"{household.id}.key").write_text(identities[household.id].private_hex() + "\n")
        modbus: dict[str, object] = {
            "host": host, "port": port,
            "meter": {"template": "gridmesh-meter", "unit_id": METER_UNIT},
        }
        if household.pv_profile is not None:
            modbus["inverter"] = {"template": "gridmesh-inverter", "unit_id": INVERTER_UNIT}
        if household.battery is not None:
            modbus["battery"] = {"template": "gridmesh-battery", "unit_id": BATTERY_UNIT}
        path = config_dir / "agents" / f"{household.id}.yaml"
        agent: dict[str, object] = {
            "device": household.id, "key_file": f"../keys/{household.id}.key", "broker": str(broker),
            "clock": "bus", "modbus": modbus, "last_order_slot": last_slot, "forecaster": forecaster,
            "planner": planner, **_auth(broker_auth(household.id, path.parent)),
            "state_dir": f"../../{STATE}/{household.id}",  # its outbox: RUN/state/<id>/
        }
        if forecaster == "perfect":
            agent["truth_file"] = f"../truth/{household.id}.csv"
            _write_truth(config_dir / "truth" / f"{household.id}.csv", household, farm, last_slot,
                         community.market.slot_s)
        path.write_text(yaml.safe_dump({
            "agent": agent,
            "community": "../community.yaml",
        }, sort_keys=False))
        agent_files.append(path)
    return coordinator_file, agent_files


def _auth(section: dict[str, str] | None) -> dict[str, object]:
    return {} if section is None else {"broker_auth": section}


def _write_truth(path: Path, household: HouseholdSpec, farm: DeviceFarm, last_slot: int,
                 slot_s: int) -> None:
    """The household's true load and PV per slot (before any curtailment), for the
    perfect forecaster: from the run's first slot to a day past its last."""
    path.parent.mkdir(exist_ok=True)
    profiles = farm.profiles
    first = farm.state(household.id).t_s // slot_s
    lines = ["slot,load_wh,pv_wh"]
    for slot in range(first, last_slot + 97):
        start, end = slot * slot_s, (slot + 1) * slot_s
        try:
            load = profiles.energy_wh(household.load_profile, start, end, household.annual_load_kwh)
            pv = (profiles.energy_wh(household.pv_profile, start, end, household.pv_peak_w)
                  if household.pv_profile else 0)
        except ValueError:  # past the feeder data: the forecaster falls back there
            break
        lines.append(f"{slot},{load},{pv}")
    path.write_text("\n".join(lines) + "\n")


async def _spawn(args: list[str], log_path: Path) -> asyncio.subprocess.Process:
    log = log_path.open("wb")
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gridmesh", *args, stdout=log, stderr=asyncio.subprocess.STDOUT
        )
    finally:
        log.close()


class Progress:
    """One line per few slots while the run goes on, on stderr."""

    def __init__(self, slots: int, first_slot: int, slot_s: int, master: ClockMaster) -> None:
        self.slots, self.first_slot, self.slot_s, self.master = slots, first_slot, slot_s, master
        self.every = max(1, slots // 12)
        self.started = time.monotonic()

    async def after_tick(self, _index: int, t_s: int) -> None:
        if t_s % self.slot_s:
            return
        done = t_s // self.slot_s - self.first_slot
        if done <= 0 or (done % self.every and done != self.slots) or done > self.slots:
            return
        p2p = sum(c.p2p_wh for c in self.master.stats.clearings)
        elapsed = time.monotonic() - self.started
        print(f"  slot {done:>5}/{self.slots}  p2p {p2p / 1000:9.1f} kWh  {elapsed:7.1f} s",
              file=sys.stderr, flush=True)  # progress, not the result: --json keeps stdout clean


def _households(
    tb: TestbedSection, start_s: int, end_s: int
) -> tuple[ProfileSet, tuple[HouseholdSpec, ...]]:
    """The run's feeder data and households; TestbedError if the data cannot carry the run."""
    try:
        profiles = (ProfileSet.load(Path(tb.feeder_data), tb.feeder) if tb.feeder_data
                    else ProfileSet.load_bundled(tb.feeder))
        battery = dataclasses.replace(PROSUMER_BATTERY, ramp_w_per_s=tb.battery_ramp_w_per_s)
        households = make_households(tb.households, tb.seed, prosumer_pct=tb.prosumer_pct,
                                     profiles=profiles, pv_only_pct=tb.pv_only_pct, battery=battery)
        if tb.community_battery_wh:
            households += (community_battery(tb.community_battery_wh, tb.community_battery_w,
                                             households[0].load_profile, battery),)
        for name in sorted({p for h in households for p in (h.load_profile, h.pv_profile) if p}):
            profiles.energy_wh(name, start_s, end_s, 0)  # the data covers the whole run
    except (ProfileError, OSError, ValueError) as exc:
        raise TestbedError(f"feeder {tb.feeder}: {exc}") from None
    check_faults(tb.faults, households)
    return profiles, households


async def run_testbed(config: TestbedConfig, out: Path, control: RunControl | None = None) -> RunArtifacts:
    """Run the community; ``control`` (a drill) supervises the participants and looks at the
    run before they start."""
    tb = config.testbed
    market = config.community.market
    first_slot = tb.start_s // market.slot_s
    times = tick_times(first_slot, tb.slots, market.slot_s, market.gate_closure_s)
    profiles, households = _households(tb, times[0], times[-1])
    prepare_out_dir(out)  # only once the run's inputs are known to be good
    (out / RUN_MARKER).write_text('{"status": "running"}\n')
    coordinator_id = Identity.derived(config.community.coordinator_id, tb.seed)
    community, identities = _community_with_members(config, households, coordinator_id)
    artifacts = RunArtifacts(out, households, community, first_slot, profiles)
    logs = out / "logs"
    logs.mkdir()

    started = time.monotonic()
    run_broker = start_testbed_broker(tb, community, out)
    broker: BrokerHandle = run_broker.handle
    artifacts.broker_kind = run_broker.label
    farm = DeviceFarm(households, profiles, times[0])
    processes: list[tuple[str, asyncio.subprocess.Process, Path]] = []
    try:
        await farm.start()
        endpoint = Endpoint(broker.host, broker.port)
        metrics = MetricsPorts.pick(tb.processes) if tb.metrics else None
        coordinator_file, agent_files = write_configs(
            out, community, coordinator_id, identities, households, farm, endpoint,
            first_slot + tb.slots - 1, tb.forecaster, tb.planner, run_broker.auth_section,
            metrics.coordinator if metrics else None,
        )
        supervisor = control.supervisor if control is not None else Supervisor()
        if control is not None:
            await control.prepare(run_broker, farm, agent_files)
        replicas: list[tuple[str, asyncio.subprocess.Process, Path]] = []
        for index in range(1, tb.replicas + 1):
            name, log_path = f"r{index}", logs / f"replica-r{index}.log"
            (out / "replicas").mkdir(exist_ok=True)
            replicas.append((name, await _spawn(
                ["ledger", "follow", str(out / "replicas" / f"{name}.db"), "--broker", str(endpoint),
                 *run_broker.auth_args(name), "--community", community.id, "--id", name, "--coordinator-key",
                 coordinator_id.public_key_hex], log_path), log_path))
        log_path = logs / "coordinator.log"
        processes.append(("coordinator", await supervisor.spawn(
            ["coordinator", "--config", str(coordinator_file)], log_path), log_path))
        external = _announce_external(out, endpoint, agent_files, tb.external_agents)
        groups = tb.processes
        for index in range(groups):
            chunk = [path for path in agent_files[index::groups] if path not in external]
            if not chunk:
                continue
            log_path = logs / f"agents-{index + 1}.log"
            extra = metrics.agent_args(index) if metrics else []
            processes.append((f"agents-{index + 1}", await supervisor.spawn(
                ["agent", "--stats-dir", str(out / AGENT_STATS), *extra, "--config", *map(str, chunk)],
                log_path), log_path))
        if metrics:
            announce_metrics(out, {name: metrics.port_of(name) for name, _, _ in processes})

        topics = Topics(community.id)
        participants = [community.coordinator_id, *(h.id for h in households)]
        inbox = FaultInbox()  # faults commanded at run time (gridmesh fault --run OUT ...)
        bench = run_broker.bench_endpoint()
        # The clock master and the fault listener each keep a session, reconnecting after a lost broker.
        async with listening(bench, f"{community.id}-faults", topics, inbox):
            master = ClockMaster(bench, f"{community.id}-clock", topics, participants,
                                 community.coordinator_id, observers=[name for name, _, _ in replicas])
            listener = asyncio.create_task(master.listen())
            watchdog = asyncio.create_task(supervisor.watch(processes))
            try:
                await _race(master.wait_online(EXTERNAL_ONLINE_S if external else ONLINE_S), watchdog)
                progress = Progress(tb.slots, first_slot, market.slot_s, master)

                async def step_physics(t_s: int) -> None:
                    artifacts.records.extend(farm.advance_to(t_s))
                    if t_s % market.slot_s == 0:
                        await apply_faults(farm, tb.faults, t_s // market.slot_s - first_slot)
                    if inbox.pending:
                        done, refused = len(inbox.applied), len(inbox.refused)
                        await inbox.apply(farm)
                        for c in inbox.applied[done:]:
                            print(f"  fault   {c.household} {c.device} -> {c.fault}", file=sys.stderr,
                                  flush=True)
                        for what, why in inbox.refused[refused:]:
                            print(f"  fault   refused ({what}): {why}", file=sys.stderr, flush=True)

                async def restart_broker(_index: int, t_s: int) -> None:
                    """A drill: stop the broker right after a listed slot's start tick, and after
                    the gate closure that follows it, and start it again at once."""
                    start = t_s % market.slot_s == 0
                    slot_index = -(-t_s // market.slot_s) - first_slot - (0 if start else 1)
                    if slot_index in tb.broker_restarts:
                        await asyncio.to_thread(broker.halt)
                        await asyncio.to_thread(broker.start_again)
                        print(f"  broker  stopped and started again at t={t_s}", file=sys.stderr, flush=True)

                speed = tb.speed if tb.clock == "realtime" else None
                run = master.run(times, step_physics, progress.after_tick, market.slot_s, speed,
                                 after_publish=restart_broker if tb.broker_restarts else None)
                await _race(run, watchdog)
            finally:
                master.stop()
                listener.cancel()
                watchdog.cancel()
        for name, process, log_path in processes:
            try:
                code = await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                raise TestbedError(f"{name} did not stop after the last tick") from None
            if code != 0:
                raise TestbedError(f"{name} exited with code {code}:\n{tail(log_path)}")
        artifacts.replicas = await stop_replicas(replicas, out)
    finally:
        for _, process, _ in [*processes, *replicas]:
            if process.returncode is None:
                process.kill()
                await process.wait()
        await farm.stop()
        broker.stop()
    artifacts.wall_s = time.monotonic() - started
    return artifacts


def _announce_external(out: Path, broker: Endpoint, agent_files: list[Path],
                       names: tuple[str, ...]) -> set[Path]:
    """Write RUN/external.json for agents run outside the testbed and say on stderr that the
    run waits for them; returns their configuration files."""
    files = {path.stem: path for path in agent_files if path.stem in names}
    if not files:
        return set()
    (out / EXTERNAL).write_text(json.dumps({
        "broker": str(broker), "config_dir": str((out / "config").resolve()),
        "agents": {name: str(path.resolve()) for name, path in sorted(files.items())},
    }, indent=2) + "\n")
    for name, path in sorted(files.items()):
        print(f"  external agent {name}: waiting for it to come online (config {path}, broker {broker})",
              file=sys.stderr, flush=True)
    return set(files.values())


FAULT_UNITS = {"meter": METER_UNIT, "inverter": INVERTER_UNIT, "battery": BATTERY_UNIT}


def check_faults(faults: tuple[FaultSpec, ...], households: tuple[HouseholdSpec, ...]) -> None:
    """TestbedError if a fault names a device its household does not have."""
    specs = {h.id: h for h in households}
    for index, fault in enumerate(faults):
        if FAULT_UNITS[fault.device] not in device_units(specs[fault.household]):
            raise TestbedError(f"testbed.faults[{index}]: {fault.household} ({specs[fault.household].role}) "
                               f"has no {fault.device}")


async def apply_faults(farm: DeviceFarm, faults: tuple[FaultSpec, ...], slot_index: int) -> None:
    """Switch each scheduled fault on at its first slot's start and off after its last
    slot (faults set at run time are left alone in between)."""
    for fault in faults:
        unit = FAULT_UNITS[fault.device]
        if slot_index == fault.from_slot:
            await farm.set_fault(fault.household, unit, fault.fault)
        elif slot_index == fault.from_slot + fault.slots and fault.fault != "counter_reset":
            await farm.set_fault(fault.household, unit, None)


async def _race(main: Awaitable[None], watchdog: asyncio.Task[None]) -> None:
    """Await ``main`` but fail early if the watchdog reports a dead process."""
    task = asyncio.ensure_future(main)
    done, _ = await asyncio.wait({task, watchdog}, return_when=asyncio.FIRST_COMPLETED)
    if watchdog in done:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        watchdog.result()
    await task
