"""``gridmesh deploy broker-config``: a locked-down mosquitto for a community."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from deploy.broker_config import AUTH_KINDS, BrokerConfigError, BrokerPlan, broker_files
from deploy.broker_files import BrokerFilesError, check_target, load_authority, load_registry, write_all
from deploy.pki import Authority, PkiError
from gridmesh.cli import UsageError

EXAMPLE = """examples:
  gridmesh deploy broker-config --community community.yaml --host broker.lan --host 192.168.1.10 --out broker
  gridmesh deploy broker-config --community community.yaml --host 192.168.1.10 --auth password \\
      --install-dir /etc/mosquitto/gridmesh --out broker
  gridmesh deploy broker-config --community community.yaml --host 192.168.1.10 --ca broker \\
      --force --out broker
  gridmesh deploy broker-config --community community.yaml --host 192.168.1.10 \\
      --home-assistant ha --out broker

Copy OUT to the broker (mosquitto.conf names its files in --install-dir) and give each
device its devices/<id>/ folder; keep ca.key off the broker. See docs/deployment.md.
"""


def add_deploy_commands(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "broker-config", help="generate a locked-down mosquitto configuration from the registry",
        description="Generate a mosquitto configuration for a community's broker: TLS with the "
        "community's CA, a client certificate (or password) per member, no anonymous access, "
        "an ACL by which each member publishes and reads only its own topics and public market "
        "data, and persistence for queued messages.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--community", type=Path, required=True,
                        help="the community registry (community.yaml: members with ids and keys)")
    parser.add_argument("--host", action="append", required=True, metavar="NAME_OR_IP",
                        help="a host name or IP address the broker's certificate is valid for "
                        "(repeat for more)")
    parser.add_argument("--out", type=Path, required=True, help="the folder to write")
    parser.add_argument("--auth", choices=AUTH_KINDS, default="tls",
                        help="tls: a client certificate per member (default); password: a password "
                        "per member (still over TLS)")
    parser.add_argument("--port", type=int, default=8883, help="the listener's port (default 8883)")
    parser.add_argument("--bind", help="the address to listen on (default: every address)")
    parser.add_argument("--install-dir", help="where the files will be on the broker "
                        "(default: OUT itself)")
    parser.add_argument("--data-dir", default="/var/lib/mosquitto",
                        help="mosquitto's persistence folder (default /var/lib/mosquitto)")
    parser.add_argument("--days", type=int, default=3650, help="certificates' validity (default 3650)")
    parser.add_argument("--user", help="the system user mosquitto runs as when started as root")
    parser.add_argument("--ca", type=Path, metavar="DIR",
                        help="sign with the CA in DIR (ca.crt, ca.key of an earlier OUT) so that "
                        "certificates already issued stay valid")
    parser.add_argument("--bench", metavar="NAME",
                        help="a test bench principal: publishes clock ticks and fault commands")
    parser.add_argument("--observer", action="append", default=[], metavar="NAME",
                        help="a principal that may read every topic (gridmesh monitor); repeatable")
    parser.add_argument("--replica", action="append", default=[], metavar="NAME",
                        help="a ledger replica (gridmesh ledger follow): public data only; repeatable")
    parser.add_argument("--home-assistant", action="append", default=[], metavar="NAME",
                        help="a Home Assistant principal: reads every member's MQTT discovery configs, "
                        "states and status (docs/integrations.md); repeatable")
    parser.add_argument("--discovery-prefix", default="homeassistant",
                        help="Home Assistant's MQTT discovery prefix (default homeassistant)")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        check_target(args.out, args.force)
    except BrokerFilesError as exc:
        raise UsageError(str(exc)) from None
    community = load_registry(args.community)
    install_dir = args.install_dir or str(args.out.resolve())
    try:
        plan = BrokerPlan(community, args.auth, tuple(args.host), install_dir, args.port, args.bind,
                          args.data_dir, args.days, args.user, args.bench, tuple(args.observer),
                          tuple(args.replica), tuple(args.home_assistant), args.discovery_prefix)
    except BrokerConfigError as exc:
        raise UsageError(_option_of(str(exc))) from None
    now = dt.datetime.now(dt.UTC)
    try:
        authority = load_authority(args.ca) if args.ca else Authority.create(community.id, now, plan.days)
        files = broker_files(plan, now, authority)
        write_all(files, args.out, args.force)
    except PkiError as exc:
        raise UsageError(f"--host: {exc}") from None
    except BrokerFilesError as exc:
        raise UsageError(str(exc)) from None
    principals = plan.principals()
    print(f"wrote {args.out}: mosquitto.conf ({args.auth}, port {plan.port}), acl, "
          f"{'passwd, ' if args.auth == 'password' else ''}server certificate for "
          f"{', '.join(plan.hosts)}; credentials for {len(principals)} principals in "
          f"{args.out}/devices/ ({', '.join(principals[:4])}{', ...' if len(principals) > 4 else ''})")
    return 0


def _option_of(problem: str) -> str:
    """``--option: problem`` for a plan's complaint about one of its fields."""
    first = problem.split(" ", 1)[0]
    options = {"auth": "--auth", "port": "--port", "days": "--days", "install_dir": "--install-dir",
               "data_dir": "--data-dir", "principal": "--bench/--observer/--replica/--home-assistant",
               "discovery_prefix": "--discovery-prefix"}
    return f"{options[first]}: {problem}" if first in options else problem
