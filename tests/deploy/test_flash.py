"""Flashing over SSH, against a real sshd started on a free port for these tests.

The sshd runs as the current user with a host key and an authorized key generated here
(openssh-server; as root it needs /run/sshd, which the tests create as Debian's service
would). The device is this machine, so the install runs without ``--system``
(``--no-service``) into a temporary prefix: users and systemd on a real device are left
to the install script's own tests and to a device.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from deploy_registry import write_registry

from broker.launcher import free_port
from deploy.manifest import build_manifest, hash_tree, manifest_json
from gridmesh.cli import main

pytestmark = pytest.mark.slow
SSHD = Path("/usr/sbin/sshd")


@dataclass(frozen=True)
class Sshd:
    port: int
    key: Path
    known_hosts: Path
    folder: Path

    def flash(self, *args: str, key: Path | None = None, port: int | None = None) -> list[str]:
        return ["deploy", "flash", "127.0.0.1", "--port", str(port or self.port), "--user", getpass.getuser(),
                "--identity", str(key or self.key), "--known-hosts", str(self.known_hosts),
                "--connect-timeout", "5", *args]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    if not SSHD.exists() or shutil.which("ssh") is None:
        if os.environ.get("CI"):
            pytest.fail("openssh-server is not installed but CI is set: .ci/run installs it")
        pytest.skip("openssh-server is not installed")
    folder = tmp_path_factory.mktemp("sshd")
    host_key, client_key = keygen(folder / "host_key"), keygen(folder / "client_key")
    shutil.copy(folder / "client_key.pub", folder / "authorized_keys")
    port = free_port()
    (folder / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile none\n"
        f"PermitRootLogin prohibit-password\nSetEnv TMPDIR={folder / 'device-tmp'}\n")
    (folder / "device-tmp").mkdir()  # where the device's sessions put pushed bundles
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(folder / "sshd_config")],
                               stderr=subprocess.PIPE, text=True)
    drain: threading.Thread | None = None
    try:
        assert process.stderr is not None
        line = process.stderr.readline()  # blocks until sshd listens or fails
        assert "Server listening" in line, line + process.stderr.read()
        drain = threading.Thread(target=process.stderr.read, daemon=True)  # its log, per connection
        drain.start()
        yield Sshd(port, client_key, folder / "known_hosts", folder)
    finally:
        process.kill()
        process.wait()
        if drain is not None:
            drain.join(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    return err


def test_flash_builds_for_the_devices_cpu_pushes_and_installs(sshd: Sshd, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    registry, keys = write_registry(tmp_path / "ops")
    broker = tmp_path / "ops" / "broker"  # the locked-down broker's credentials travel in the bundle
    assert main(["deploy", "broker-config", "--community", str(registry), "--host", "10.0.0.1",
                 "--out", str(broker)]) == 0
    prefix = tmp_path / "device" / "opt"
    code = main(sshd.flash("--device", "h001", "--registry", str(registry), "--keys", str(keys),
                           "--broker", "10.0.0.1:8883", "--modbus", "10.0.0.5", "--prefix", str(prefix),
                           "--broker-auth", str(broker / "devices" / "h001" / "broker_auth.yaml"),
                           "--no-service"))
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"installed under {prefix} (no service)" in out
    installed = prefix / "current"
    assert (installed / "venv" / "bin" / "gridmesh").exists()
    agent = yaml.safe_load((installed / "config" / "agent.yaml").read_text())["agent"]
    assert (agent["device"], agent["broker"], agent["modbus"]["host"]) == (
        "h001", "10.0.0.1:8883", "10.0.0.5")
    assert agent["broker_auth"] == {"ca_file": "broker/ca.crt", "cert_file": "broker/client.crt",
                                    "key_file": "broker/client.key"}
    client_key = installed / "config" / "broker" / "client.key"
    assert client_key.read_bytes() == (broker / "devices" / "h001" / "client.key").read_bytes()
    assert client_key.stat().st_mode & 0o777 == 0o600
    assert f'"arch": "{os.uname().machine}"' in (installed / "manifest.json").read_text()
    assert list((sshd.folder / "device-tmp").iterdir()) == []  # the pushed bundle is gone


def test_an_unreachable_host_is_one_line_and_nothing_is_built(sshd: Sshd, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    registry, keys = write_registry(tmp_path / "ops")
    closed = free_port()
    assert main(sshd.flash("--device", "h001", "--registry", str(registry), "--keys", str(keys),
                           "--broker", "10.0.0.1:1883", port=closed)) == 2
    assert one_line(capsys) == (
        f"gridmesh deploy: {getpass.getuser()}@127.0.0.1 (port {closed}): unreachable "
        f"(ssh: connect to host 127.0.0.1 port {closed}: Connection refused)")


def test_a_refused_key_is_one_line(sshd: Sshd, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stranger = keygen(tmp_path / "stranger")
    assert main(sshd.flash("--device", "h001", "--bundle", str(tmp_path), key=stranger)) == 2
    assert "the device refused the key" in one_line(capsys)


def fake_bundle(folder: Path, install_sh: str) -> Path:
    folder.mkdir()
    (folder / "install.sh").write_text(install_sh)
    manifest = build_manifest(hash_tree(folder), {"device": "h001", "arch": os.uname().machine}, "0.1.0")
    (folder / "manifest.json").write_text(manifest_json(manifest))
    return folder


def test_a_damaged_bundle_is_refused_before_anything_is_pushed(sshd: Sshd, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    bundle = fake_bundle(tmp_path / "bundle", "exit 0\n")
    (bundle / "install.sh").write_text("rm -rf /\n")
    assert main(sshd.flash("--device", "h001", "--bundle", str(bundle))) == 2
    assert one_line(capsys) == "gridmesh deploy: --bundle: install.sh: SHA-256 differs from the manifest"


def test_a_failed_install_is_one_line_and_the_pushed_bundle_is_removed(
    sshd: Sshd, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    bundle = fake_bundle(tmp_path / "bundle", 'echo "install.sh: the disk is full ($0)" >&2\nexit 1\n')
    assert main(sshd.flash("--device", "h001", "--bundle", str(bundle), "--no-service")) == 2
    line = one_line(capsys)
    assert "install failed, the version that ran before is kept: install.sh: the disk is full (" in line
    assert f"({sshd.folder / 'device-tmp'}/gridmesh-bundle." in line  # pushed into the device's TMPDIR
    assert list((sshd.folder / "device-tmp").iterdir()) == []
