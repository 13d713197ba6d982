"""The four drills: what each does to a running testbed, and what it checks besides the
checks every drill makes (:mod:`simulators.drill_checks`).

- ``broker-outage``: the broker is killed (SIGKILL: whatever it held only in memory is
  gone) as slot S starts, and started again on its port and working directory
  ``down_s`` later.
- ``coordinator-kill``: the coordinator is killed as soon as slot S's clearing is out,
  in the middle of its gate closure (awards, settlements and blocks still going out);
  the supervisor starts it again after ``restart_delay_s``.
- ``agent-kill``: one household's agent, in a process of its own, is killed as slot
  S + 1's gate closes, with its order and meter report still waiting for their answers;
  started again after ``restart_delay_s``.
- ``network-cut``: one household's agent reaches the broker through a proxy
  (:mod:`simulators.net_cut`); as slot S starts the link goes down with what the agent
  sends next, and comes back ``down_s`` later.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import yaml

from broker.messages import Clearing, ClockTick
from simulators.device_farm import BATTERY_UNIT
from simulators.drill_control import DrillControl, DrillOptions, RunShape
from simulators.drill_evidence import outbox_waiting
from simulators.drill_report import Check
from simulators.net_cut import NetCut


def agent_stats(out: Path, household: str) -> dict[str, int]:
    """The counters the household's agent wrote when it finished ({} if it did not)."""
    path = out / "agents" / f"{household}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _reconnected(out: Path, households: list[str]) -> Check:
    stats = {h: agent_stats(out, h) for h in households}
    missing = [h for h, s in stats.items() if s.get("reconnects", 0) < 1]
    replayed = sum(s.get("outbox_replayed", 0) for s in stats.values())
    return Check.of("agents reconnected and replayed their outboxes", not missing,
                    f"no reconnect from {', '.join(missing)}" if missing else
                    f"{len(stats)} agent(s) reconnected; {replayed} message(s) published again "
                    "from their outboxes")


class BrokerOutage(DrillControl):
    name = "broker-outage"

    def describe(self) -> str:
        return (f"the broker killed as {self.at} starts, started again on its port and "
                f"working directory {self.options.down_s:g} s later")

    def on_tick(self, kind: str, tick: ClockTick) -> None:
        if kind == "tick" and tick.t_s == self.strike_slot * self.shape.slot_s:
            self.strike(self._outage())

    async def _outage(self) -> None:
        handle = self.broker.handle
        pid = handle.pid
        handle.process.kill()
        await asyncio.to_thread(handle.process.wait)
        self.event(f"{self.at} start: {handle.kind} killed (SIGKILL, pid {pid})")
        await asyncio.sleep(self.options.down_s)
        await asyncio.to_thread(handle.start_again)
        self.restarted_pid = handle.pid
        self.event(f"broker started again on port {handle.port} after {self.options.down_s:g} s "
                   f"(pid {handle.pid})")

    def drill_checks(self, out: Path) -> list[Check]:
        back = getattr(self, "restarted_pid", None)
        return [Check.of("the broker started again on its port and working directory", back is not None,
                         f"pid {back}" if back else "it was not started again"),
                _reconnected(out, [path.stem for path in self.agent_files])]


class CoordinatorKill(DrillControl):
    name = "coordinator-kill"
    restarts = True

    def describe(self) -> str:
        moment = (f"as soon as {self.at}'s clearing is out" if self.options.moment == "gate" else
                  f"as {self.at} starts, with the members' orders and reports on their way")
        return (f"the coordinator killed (SIGKILL) {moment}, started again by the supervisor "
                f"{self.options.restart_delay_s:g} s later")

    def on_clearing(self, clearing: Clearing) -> None:
        if self.options.moment == "gate" and clearing.slot == self.strike_slot:
            self.strike(self._kill(f"{self.at}'s clearing out"))

    def on_tick(self, kind: str, tick: ClockTick) -> None:
        starting = kind == "tick" and tick.t_s == self.strike_slot * self.shape.slot_s
        if self.options.moment == "orders" and starting:
            self.strike(self._kill(f"{self.at} start"))

    async def _kill(self, moment: str) -> None:
        pid = await self.supervisor.kill("coordinator")
        self.event(f"{moment}: coordinator killed (SIGKILL, pid {pid})")
        await self.supervisor.wait_restarts(1)
        self.event(f"supervisor started the coordinator again (pid {self.supervisor.pid('coordinator')})")

    def drill_checks(self, out: Path) -> list[Check]:
        restarts = [r for r in self.supervisor.restarts if r.name == "coordinator"]
        return [Check.of("the coordinator was started again by the supervisor", len(restarts) == 1,
                         f"{len(restarts)} restart(s)" + "".join(
                             f"; pid {r.old_pid} exit {r.exit_code} -> pid {r.new_pid}" for r in restarts))]


class AgentKill(DrillControl):
    name = "agent-kill"
    restarts = True

    def __init__(self, options: DrillOptions, shape: RunShape) -> None:
        super().__init__(options, shape)
        self.kill_t_s: int | None = None
        self.waiting_at_kill: list[str] = []
        self.samples: list[tuple[int, int, int, int]] = []  # t_s, setpoint_enable, setpoint_w, commanded_s

    def describe(self) -> str:
        return (f"{self.household}'s agent killed (SIGKILL) as {self.next}'s gate "
                f"closes, started again by the supervisor {self.options.restart_delay_s:g} s later")

    def on_tick(self, kind: str, tick: ClockTick) -> None:
        if self.farm.spec(self.household).battery is not None:
            registers = self.farm.values(self.household)[BATTERY_UNIT]
            state = self.farm.state(self.household)
            self.samples.append((tick.t_s, registers["setpoint_enable"], registers["setpoint_w"],
                                 state.commanded_s))
        if kind == "gate" and tick.t_s == self.shape.gate_s(self.strike_slot + 1):
            self.strike(self._kill(tick.t_s))

    async def _kill(self, t_s: int) -> None:
        config = self.agent_file(self.household)
        name = self.supervisor.find(lambda args: str(config) in args)
        pid = await self.supervisor.kill(name)
        self.kill_t_s = t_s
        self.excused[self.household, self.strike_slot] = "its opening reading died with the killed agent"
        waiting = self.waiting_at_kill = outbox_waiting(config)
        self.event(f"{self.next}'s gate: {self.household}'s agent killed (SIGKILL, "
                   f"pid {pid}); its outbox held {len(waiting)} message(s): {', '.join(waiting)}")
        await self.supervisor.wait_restarts(1)
        self.event(f"supervisor started {self.household}'s agent again (pid {self.supervisor.pid(name)})")

    def drill_checks(self, out: Path) -> list[Check]:
        stats = agent_stats(out, self.household)
        restarted = len(self.supervisor.restarts) == 1 and stats.get("sessions", 0) >= 1
        rejoined = Check.of("the agent rejoined", restarted,
                            f"{len(self.supervisor.restarts)} restart(s); the restarted agent had "
                            f"{stats.get('sessions', 0)} session(s) and ran to the last tick")
        replayed = stats.get("outbox_replayed", 0)
        flushed = Check.of("its outbox was published again after the restart",
                           replayed >= len(self.waiting_at_kill),
                           f"{len(self.waiting_at_kill)} message(s) waiting at the kill, {replayed} "
                           "published again, none left at the end (see the outbox check)")
        return [rejoined, flushed, self._setpoint()]

    def _setpoint(self) -> Check:
        """From the battery's registers, sampled at every tick: the agent's setpoint before the
        kill, and a setpoint the restarted agent wrote (``commanded_s`` after the kill)."""
        name = "its battery setpoint applied again"
        if self.kill_t_s is None or not self.samples:
            return Check(name, "skipped", f"{self.household} has no battery" if not self.samples
                         else "the agent was not killed")
        kill, when = self.kill_t_s, self._when
        before = [s for s in self.samples if s[0] <= kill and s[1] == 1]
        after = [s for s in self.samples if s[0] > kill and s[3] > kill]
        if not before:
            return Check(name, "skipped", "before the kill the battery was on its own self-consumption")
        _, _, was_w, was_s = before[-1]
        was = f"before the kill the register held {was_w} W (written at {when(was_s)})"
        commanded = [s for s in after if s[1] == 1]
        if not commanded:
            return Check.of(name, False, f"{was}; no setpoint written after the restart")
        released = [s for s in after if s[1] == 0 and s[3] < commanded[0][3]]
        meanwhile = (f"; at {when(released[0][3])} it had no plan yet and left the battery to its own "
                     "self-consumption" if released else "")
        _, _, now_w, now_s = commanded[0]
        return Check.of(name, True, f"{was}{meanwhile}; the restarted agent wrote {now_w} W at {when(now_s)}")

    def _when(self, t_s: int) -> str:
        slot, into = divmod(t_s, self.shape.slot_s)
        return f"the start of {self.shape.name(slot)}" if not into else f"t={t_s}"


class NetworkCut(DrillControl):
    name = "network-cut"

    def __init__(self, options: DrillOptions, shape: RunShape) -> None:
        super().__init__(options, shape)
        self.proxy: NetCut | None = None

    def describe(self) -> str:
        return (f"{self.household}'s link to the broker cut as {self.at} starts, "
                f"with what it sends next, and restored {self.options.down_s:g} s later")

    async def before_start(self) -> None:
        handle = self.broker.handle
        self.proxy = NetCut(handle.host, handle.port)
        port = await self.proxy.start()
        path = self.agent_file(self.household)
        config = yaml.safe_load(path.read_text())
        config["agent"]["broker"] = f"{self.proxy.host}:{port}"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.event(f"{self.household}'s agent reaches the broker through a proxy on port {port}")

    def on_tick(self, kind: str, tick: ClockTick) -> None:
        starting = kind == "tick" and tick.t_s == self.strike_slot * self.shape.slot_s
        if starting and not self.struck and self.proxy is not None:  # once: the tick may be sent again
            self.proxy.cut_on_next_send()
            self.strike(self._cut(self.proxy))

    async def _cut(self, proxy: NetCut) -> None:
        await proxy.wait_cut()
        self.event(f"{self.at} start: {self.household}'s link cut as it sent "
                   f"({proxy.stats.lost_bytes} byte(s) lost)")
        await asyncio.sleep(self.options.down_s)
        await proxy.restore()
        self.event(f"link restored after {self.options.down_s:g} s")

    async def after_run(self) -> None:
        if self.proxy is not None:
            await self.proxy.close()

    def drill_checks(self, out: Path) -> list[Check]:
        assert self.proxy is not None
        stats = self.proxy.stats
        caught_up = Check.of("the agent caught up", stats.cuts == 1 and stats.connections >= 2,
                             f"{stats.cuts} cut(s), {stats.connections} connection(s) through the proxy")
        return [caught_up, _reconnected(out, [self.household])]


DRILLS: dict[str, type[DrillControl]] = {
    drill.name: drill for drill in (BrokerOutage, CoordinatorKill, AgentKill, NetworkCut)}
