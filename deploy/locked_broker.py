"""A locked-down mosquitto on this machine, for testbeds and tests: the files
``gridmesh deploy broker-config`` would write, generated into a folder, and mosquitto
started from them on a free port, with each principal's credentials at hand.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from broker.bus import Endpoint
from broker.community import Community
from broker.credentials import Credentials, load_auth_file
from broker.launcher import BrokerHandle, free_port, start_broker
from deploy.broker_config import BrokerPlan, broker_files, client_auth
from deploy.broker_files import write_all
from deploy.pki import Authority

CERT_DAYS = 30


@dataclass
class LockedBroker:
    handle: BrokerHandle
    plan: BrokerPlan
    folder: Path  # the generated files (mosquitto.conf, acl, devices/<id>/...)

    def auth_section(self, principal: str, config_dir: Path) -> dict[str, str]:
        """``broker_auth`` for ``principal``, for a configuration file in ``config_dir``."""
        devices = self.folder.resolve() / "devices" / principal
        return client_auth(self.plan, principal, os.path.relpath(devices, config_dir.resolve()))

    def auth_file(self, principal: str) -> Path:
        return self.folder / "devices" / principal / "broker_auth.yaml"

    def credentials(self, principal: str) -> Credentials:
        return load_auth_file(self.auth_file(principal))

    def endpoint(self, principal: str) -> Endpoint:
        return Endpoint(self.handle.host, self.handle.port, self.credentials(principal))

    def stop(self) -> None:
        self.handle.stop()


def start_locked_broker(community: Community, auth: str, folder: Path, workdir: Path, *,
                        host: str = "127.0.0.1", bench: str | None = None,
                        observers: tuple[str, ...] = (), replicas: tuple[str, ...] = (),
                        home_assistant: tuple[str, ...] = ()) -> LockedBroker:
    """Generate the files for ``community`` into ``folder`` (which must not exist) and start
    mosquitto from them; ``workdir`` holds its persistence database and output."""
    port = free_port(host)
    run_as = "root" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    plan = BrokerPlan(community, auth, (host,), str(folder.resolve()), port=port, bind=host,
                      data_dir=str(workdir.resolve()), days=CERT_DAYS, run_as=run_as, bench=bench,
                      observers=observers, replicas=replicas, home_assistant=home_assistant)
    now = dt.datetime.now(dt.UTC)
    write_all(broker_files(plan, now, Authority.create(community.id, now, CERT_DAYS)), folder, force=False)
    handle = start_broker("mosquitto", port=port, host=host, workdir=workdir,
                          config=folder / "mosquitto.conf")
    return LockedBroker(handle, plan, folder)

