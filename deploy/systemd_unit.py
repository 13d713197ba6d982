"""The agent's systemd service: notify with a watchdog, restart always, its own user, locked down.

The agent tells systemd it is up (``READY=1``) once it is connected and running, and
pings the watchdog only while its loop is healthy; systemd restarts it when the pings
stop or when it exits, after power cuts too (the unit is enabled). The service runs as
an unprivileged system user with no capabilities, sees the file system read-only
except its state folder, reaches only IP and its notify socket, and is capped in memory.
The install prefix is filled in by the install script (``@PREFIX@``).
"""

from __future__ import annotations

from dataclasses import dataclass

UNIT_NAME = "gridmesh-agent.service"
PREFIX_PLACEHOLDER = "@PREFIX@"


@dataclass(frozen=True)
class UnitSpec:
    device: str
    state_dir: str = "/var/lib/gridmesh"
    user: str = "gridmesh"
    watchdog_s: int = 120  # the agent pings well within this while its loop is healthy
    memory_max_mb: int = 300  # the agent needs about 120 MB; a Pi has 1 GB
    restart_s: int = 5


HARDENING = (
    "NoNewPrivileges=yes",
    "CapabilityBoundingSet=",
    "AmbientCapabilities=",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",  # Modbus TCP only: no serial ports
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",  # MQTT, Modbus TCP; AF_UNIX: sd_notify
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service",
    "UMask=0077",
)


def render_unit(spec: UnitSpec) -> str:
    """The unit file's text, with ``@PREFIX@`` where the install prefix goes."""
    prefix = PREFIX_PLACEHOLDER
    lines = [
        "[Unit]",
        f"Description=gridmesh edge agent {spec.device}",
        "Wants=network-online.target",
        "After=network-online.target",
        "StartLimitIntervalSec=0",  # keep restarting, however often it failed
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        f"ExecStart={prefix}/current/venv/bin/gridmesh agent --config {prefix}/current/config/agent.yaml",
        f"WatchdogSec={spec.watchdog_s}",
        "Restart=always",
        f"RestartSec={spec.restart_s}",
        "TimeoutStartSec=120",
        f"User={spec.user}",
        f"Group={spec.user}",
        f"ReadWritePaths={spec.state_dir}",
        f"MemoryMax={spec.memory_max_mb}M",
        *HARDENING,
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"
