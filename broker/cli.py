"""``gridmesh broker`` and ``gridmesh monitor``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from broker.bus import Endpoint
from broker.credentials import load_auth_file
from broker.dashboard.command import run_dashboard
from broker.launcher import BrokerError, start_broker
from broker.monitor import watch
from gridmesh.cli import UsageError
from gridmesh.logs import add_log_arguments, configure_logging

BROKER_EXAMPLE = """examples:
  gridmesh broker --port 1884
  gridmesh broker --port 1884 --kind embedded
"""
MONITOR_EXAMPLE = """examples:
  gridmesh monitor --broker 127.0.0.1:1884 --community demo
  gridmesh monitor --broker 127.0.0.1:1884 --topic 'gm/v1/demo/dev/+/order' --count 10
  gridmesh monitor --broker 127.0.0.1:1884 --community demo --dashboard
  gridmesh monitor --broker 127.0.0.1:1884 --registry runs/x/config/community.yaml --dashboard --print
dashboard keys: f filter by member, p pause/resume, q quit (docs/monitoring.md)
"""


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    broker = sub.add_parser(
        "broker", help="start an MQTT broker (mosquitto if installed, else embedded)",
        description="Start an MQTT broker configured so that no queued QoS 1 message is lost.",
        epilog=BROKER_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    broker.add_argument("--port", type=int, default=1883)
    broker.add_argument("--host", default="127.0.0.1")
    broker.add_argument("--kind", choices=("auto", "mosquitto", "embedded"), default="auto")
    add_log_arguments(broker)
    broker.set_defaults(handler=run_broker)

    monitor = sub.add_parser(
        "monitor", help="print every message on a broker, decoded, one line each",
        description="Subscribe to a community's topics and print each message decoded.",
        epilog=MONITOR_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    monitor.add_argument("--broker", required=True, help="HOST:PORT")
    monitor.add_argument("--community", help="community id (default: every community)")
    monitor.add_argument("--topic", help="MQTT topic filter (default gm/v1/COMMUNITY/#)")
    monitor.add_argument("--count", type=int, help="exit after this many messages")
    monitor.add_argument("--broker-auth", type=Path, metavar="FILE",
                         help="an observer's credentials for a locked-down broker (gridmesh deploy "
                         "broker-config --observer NAME writes devices/NAME/broker_auth.yaml)")
    monitor.add_argument("--dashboard", action="store_true",
                         help="a terminal dashboard of the community instead of lines (the dashboard extra)")
    monitor.add_argument("--print", action="store_true", dest="print_frame",
                         help="with --dashboard: print one frame as text after --count messages or "
                         "--seconds, and exit (no terminal needed)")
    monitor.add_argument("--seconds", type=float, default=5.0,
                         help="with --dashboard --print: listen at most this long (default 5)")
    monitor.add_argument("--registry", type=Path, metavar="FILE",
                         help="with --dashboard: the community registry (community.yaml), for the feeder "
                         "limits and the members not yet heard of")
    monitor.add_argument("--filter", default="", metavar="TERMS",
                         help="with --dashboard: show only members whose id contains one of these words")
    monitor.set_defaults(handler=run_monitor)


def run_broker(args: argparse.Namespace) -> int:
    configure_logging(args.log_level, args.log_format)  # the embedded broker logs alike
    try:
        handle = start_broker(args.kind, port=args.port, host=args.host)
    except BrokerError as exc:
        raise UsageError(str(exc)) from None
    print(f"{handle.kind} on {handle.url} (Ctrl-C stops it)", flush=True)
    try:
        handle.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
    return 0


def run_monitor(args: argparse.Namespace) -> int:
    try:
        endpoint = Endpoint.parse(args.broker)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.count is not None and args.count < 1:
        raise UsageError(f"--count must be at least 1, got {args.count}")
    topic = args.topic or f"gm/v1/{args.community or '+'}/#"
    credentials = load_auth_file(args.broker_auth) if args.broker_auth else None
    if args.dashboard:
        return run_dashboard(endpoint, args.topic, args.community, args.registry, credentials,
                             args.print_frame, args.count, args.seconds, args.filter)
    if args.print_frame or args.registry or args.filter:
        raise UsageError("--print, --registry and --filter go with --dashboard")
    try:
        watch(endpoint.host, endpoint.port, topic, args.count, credentials=credentials)
    except OSError as exc:
        raise UsageError(f"cannot reach the broker at {endpoint}: {exc}") from None
    return 0
