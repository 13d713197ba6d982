"""The testbed's broker: open (``broker_auth: none``) or locked down like a community's
own (``tls`` or ``password``: ``gridmesh deploy broker-config``'s files, generated into
``RUN/broker-auth/``, and mosquitto started from them), with each process's credentials.

In a locked-down run every participant presents its own: the coordinator and each agent
through a ``broker_auth`` section in its configuration file, the replicas with
``--broker-auth``, and the testbed's clock master and fault listener as the bench
principal ``testbed`` (``gridmesh fault --run RUN`` uses its file too).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from broker.bus import Endpoint
from broker.community import Community
from broker.launcher import BrokerHandle, start_broker
from deploy.locked_broker import LockedBroker, start_locked_broker
from simulators.testbed_config import TestbedSection

AUTH_DIR = "broker-auth"  # in the run folder
BENCH = "testbed"


@dataclass
class TestbedBroker:
    handle: BrokerHandle
    locked: LockedBroker | None = None

    @property
    def endpoint(self) -> Endpoint:
        """Where the broker listens (what configuration files name)."""
        return Endpoint(self.handle.host, self.handle.port)

    @property
    def label(self) -> str:
        if self.locked is None:
            return self.handle.kind
        return f"{self.handle.kind}, locked down ({self.locked.plan.auth})"

    def bench_endpoint(self) -> Endpoint:
        """The endpoint with the clock master's credentials."""
        return self.endpoint if self.locked is None else self.locked.endpoint(BENCH)

    def auth_section(self, principal: str, config_dir: Path) -> dict[str, str] | None:
        """``broker_auth`` for ``principal``'s configuration file in ``config_dir``."""
        return None if self.locked is None else self.locked.auth_section(principal, config_dir)

    def auth_args(self, principal: str) -> list[str]:
        """``--broker-auth FILE`` for a command-line tool running as ``principal``."""
        return [] if self.locked is None else ["--broker-auth", str(self.locked.auth_file(principal))]

    def stop(self) -> None:
        self.handle.stop()


def start_testbed_broker(tb: TestbedSection, community: Community, out: Path) -> TestbedBroker:
    """Start the run's broker in ``out/broker``; BrokerError if it cannot start."""
    if tb.broker_auth == "none":
        return TestbedBroker(start_broker(tb.broker, workdir=out / "broker"))
    replicas = tuple(f"r{index}" for index in range(1, tb.replicas + 1))
    locked = start_locked_broker(community, tb.broker_auth, out / AUTH_DIR, out / "broker",
                                 bench=BENCH, replicas=replicas)
    return TestbedBroker(locked.handle, locked)
