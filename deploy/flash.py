"""Flash a device over SSH: push a bundle, run its install script, start the agent.

Everything goes through the ``ssh`` client (batch mode: a missing or refused key fails
at once instead of asking; a connect timeout), one connection per step:

1. ask the device its architecture (``uname -m``): this is also the reachability check,
   before anything is built or sent;
2. stream the bundle as a tar archive into a fresh folder on the device (``mktemp -d`` in
   its ``TMPDIR``, else /tmp);
3. run its install script (``sudo -n`` unless the user is root) with ``--system``, which
   installs into a new version folder, switches ``current`` only when all went well,
   and (re)starts the service; then remove the pushed bundle;
4. report the service's state.

A failure at any step is one line naming the host and what failed; the atomic install
keeps whatever version ran before.
"""

from __future__ import annotations

import shlex
import subprocess
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.systemd_unit import UNIT_NAME

SSH_FAILED = 255  # ssh's own exit code (connection, authentication); others are the command's


class FlashError(RuntimeError):
    """A step of flashing failed; the message is one line naming host and step."""


@dataclass(frozen=True)
class SshTarget:
    host: str
    user: str | None = None
    port: int = 22
    identity: Path | None = None
    known_hosts: Path | None = None  # default: the user's; new host keys are accepted once
    connect_timeout_s: int = 10

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def ssh(self, remote_command: str) -> list[str]:
        """The ssh command line that runs ``remote_command`` (a shell line) on the device."""
        args = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout_s}",
                "-o", "StrictHostKeyChecking=accept-new", "-o", "ServerAliveInterval=15",
                "-o", "LogLevel=ERROR", "-p", str(self.port)]
        if self.identity is not None:
            args += ["-i", str(self.identity), "-o", "IdentitiesOnly=yes"]
        if self.known_hosts is not None:
            args += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        return [*args, "--", self.destination, remote_command]


def ssh_problem(target: SshTarget, stderr: str) -> str:
    """One line for an ssh failure: unreachable, refused key, unknown host key, ..."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    last = lines[-1] if lines else "ssh failed without a message"
    where = f"{target.destination} (port {target.port})"
    if "Permission denied" in last:
        return f"{where}: the device refused the key ({last})"
    if "Host key verification failed" in last or "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr:
        return f"{where}: the device's host key does not match the known one ({last})"
    return f"{where}: unreachable ({last})"


def install_command(remote_dir: str, prefix: str, system: bool) -> str:
    """The shell line that installs the pushed bundle and removes it afterwards."""
    script = f"sh {shlex.quote(remote_dir + '/install.sh')} --prefix {shlex.quote(prefix)}"
    if system:
        script = (f'if [ "$(id -u)" = 0 ]; then {script} --system; '
                  f"else sudo -n {script} --system; fi")
    return f"{script}; code=$?; rm -rf {shlex.quote(remote_dir)}; exit $code"


def _run(args: Sequence[str], timeout_s: float) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(list(args), capture_output=True, timeout=timeout_s, check=False)
    except FileNotFoundError:
        raise FlashError("ssh is not installed here (apt install openssh-client)") from None
    except subprocess.TimeoutExpired:
        raise FlashError(f"{args[-2]}: no answer within {timeout_s:.0f} s") from None


def remote_arch(target: SshTarget) -> str:
    """The device's architecture; FlashError if it cannot be reached or refuses the key."""
    done = _run(target.ssh("uname -m"), target.connect_timeout_s + 30)
    if done.returncode != 0:
        raise FlashError(ssh_problem(target, done.stderr.decode(errors="replace")))
    return done.stdout.decode().strip()


def push_bundle(target: SshTarget, bundle: Path) -> str:
    """Stream ``bundle`` into a new folder on the device; returns that folder."""
    command = target.ssh('d=$(mktemp -d "${TMPDIR:-/tmp}/gridmesh-bundle.XXXXXX") && tar -C "$d" -xf - '
                         '&& echo "$d"')
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as process:
        assert process.stdin is not None
        try:
            with tarfile.open(fileobj=process.stdin, mode="w|") as tar:
                tar.add(bundle, arcname=".")
        except BrokenPipeError:  # ssh gave up; its stderr says why
            pass
        try:
            stdout, stderr = process.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            process.kill()
            raise FlashError(f"{target.destination}: copying the bundle took over 600 s") from None
    if process.returncode == SSH_FAILED:
        raise FlashError(ssh_problem(target, stderr.decode(errors="replace")))
    if process.returncode != 0:
        raise FlashError(f"{target.destination}: copying the bundle failed: "
                         f"{stderr.decode(errors='replace').strip()}")
    return stdout.decode().strip().splitlines()[-1]


def install(target: SshTarget, remote_dir: str, prefix: str, system: bool) -> list[str]:
    """Run the pushed bundle's install script; its output lines, or FlashError."""
    done = _run(target.ssh(install_command(remote_dir, prefix, system)), 1800)
    out = done.stdout.decode(errors="replace").strip().splitlines()
    err = done.stderr.decode(errors="replace").strip().splitlines()
    if done.returncode == SSH_FAILED and not out:
        raise FlashError(ssh_problem(target, "\n".join(err)))
    if done.returncode != 0:
        why = err[-1] if err else f"exit code {done.returncode}"
        raise FlashError(f"{target.destination}: install failed, the version that ran before is "
                         f"kept: {why}")
    return out


def service_state(target: SshTarget) -> str:
    done = _run(target.ssh(f"systemctl is-active {UNIT_NAME}"), target.connect_timeout_s + 30)
    return done.stdout.decode().strip() or "unknown"
