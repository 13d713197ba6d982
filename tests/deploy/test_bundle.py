"""Bundles: the manifest, the unit, the agent configuration and what bad input gets.

Building and installing a whole bundle is in test_bundle_install.py; here nothing needs
pip or the network: every bad input is refused before a wheel is looked at.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from deploy_registry import write_registry

from deploy.agent_config import bundle_agent_config, parse_host_port
from deploy.manifest import build_manifest, check_bundle, content_digest, manifest_json, problems
from deploy.systemd_unit import PREFIX_PLACEHOLDER, UnitSpec, render_unit
from deploy.wheels import Target, WheelError, explain_pip_failure, parse_report, runtime_requirements
from gridmesh.cli import main
from gridmesh.config import ConfigError

# -- the manifest --------------------------------------------------------------------------


def test_a_manifest_finds_missing_changed_and_unlisted_files(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("b")
    from deploy.manifest import hash_tree

    manifest = build_manifest(hash_tree(tmp_path), {"device": "h001"}, "0.1.0")
    (tmp_path / "manifest.json").write_text(manifest_json(manifest))
    assert check_bundle(tmp_path) == (json.loads(manifest_json(manifest)), [])

    (tmp_path / "sub" / "b.txt").write_text("B")
    (tmp_path / "a.txt").unlink()
    (tmp_path / "extra").write_text("x")
    assert check_bundle(tmp_path)[1] == ["a.txt: missing", "sub/b.txt: SHA-256 differs from the manifest",
                                         "extra: not in the manifest"]


def test_the_version_names_the_content() -> None:
    one = build_manifest({"a": "1" * 64}, {}, "0.1.0")
    other = build_manifest({"a": "2" * 64}, {}, "0.1.0")
    assert one["version"] == f"0.1.0-{content_digest({'a': '1' * 64})[:12]}"
    assert one["version"] != other["version"]
    assert problems({"format": 99, "files": {}}, {}) == ["manifest.json: not a format-1 bundle manifest"]


# -- the systemd unit ----------------------------------------------------------------------


def test_the_unit_is_notify_with_a_watchdog_its_own_user_and_locked_down() -> None:
    text = render_unit(UnitSpec("h001", state_dir="/var/lib/gm", watchdog_s=90, memory_max_mb=200))
    lines = set(text.splitlines())
    assert {"Type=notify", "WatchdogSec=90", "Restart=always", "User=gridmesh", "NoNewPrivileges=yes",
            "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "ReadWritePaths=/var/lib/gm",
            "CapabilityBoundingSet=", "MemoryMax=200M",
            "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX"} <= lines
    assert f"ExecStart={PREFIX_PLACEHOLDER}/current/venv/bin/gridmesh agent --config " \
           f"{PREFIX_PLACEHOLDER}/current/config/agent.yaml" in lines
    assert [line for line in lines if line.startswith("ReadWritePaths=")] == ["ReadWritePaths=/var/lib/gm"]


# -- wheels --------------------------------------------------------------------------------


def test_a_target_accepts_every_manylinux_from_2_17_to_2_28() -> None:
    platforms = Target("aarch64").platforms
    assert platforms[0] == "manylinux_2_28_aarch64" and "manylinux_2_17_aarch64" in platforms
    assert "manylinux2014_aarch64" in platforms and not any("x86_64" in p for p in platforms)
    with pytest.raises(WheelError, match="unknown architecture 'armv7l'"):
        Target("armv7l")


def test_runtime_requirements_leave_extras_out() -> None:
    metadata = ("Metadata-Version: 2.1\nName: gridmesh\nRequires-Dist: numpy==2.4.6\n"
                "Requires-Dist: uvloop==0.23.0; sys_platform != \"win32\"\n"
                "Requires-Dist: amqtt==0.12.1; extra == \"embedded-broker\"\n\nRequires-Dist: in the text\n")
    assert runtime_requirements(metadata) == ["numpy==2.4.6", 'uvloop==0.23.0; sys_platform != "win32"']


def test_pips_report_and_its_failures_read_as_wheels_and_one_line() -> None:
    report = {"install": [{"metadata": {"name": "numpy", "version": "2.4.6"}, "download_info": {
        "url": "https://files/numpy-2.4.6-cp311-cp311-manylinux_2_28_aarch64.whl",
        "archive_info": {"hashes": {"sha256": "ab" * 32}}}}]}
    [wheel] = parse_report(json.dumps(report))
    assert (wheel.name, wheel.filename, wheel.sha256) == (
        "numpy", "numpy-2.4.6-cp311-cp311-manylinux_2_28_aarch64.whl", "ab" * 32)
    report["install"][0]["download_info"]["url"] = "https://files/numpy-2.4.6.tar.gz"
    with pytest.raises(WheelError, match="not a wheel"):
        parse_report(json.dumps(report))
    stderr = ("ERROR: Could not find a version that satisfies the requirement cffi>=2.0.0 "
              "(from cryptography) (from versions: none)\n"
              "ERROR: No matching distribution found for cffi>=2.0.0\n")
    assert explain_pip_failure(stderr, Target("aarch64")) == (
        "cffi>=2.0.0 (needed by cryptography): no wheel for CPython 3.11 on aarch64 "
        "(manylinux, glibc <= 2.28)")


# -- the agent's configuration -------------------------------------------------------------


def test_the_bundle_owns_key_registry_and_broker_and_keeps_the_devices_settings() -> None:
    device_file = {"agent": {"device": "h001", "key_file": "../keys/h001.key", "broker": "old:1883",
                             "clock": "bus", "modbus": {"host": "10.0.0.5", "port": 5020}},
                   "community": "../community.yaml"}
    config, copies = bundle_agent_config("h001", device_file, "h001.yaml", broker="10.0.0.1:1883",
                                         modbus="10.0.0.6", state_dir="/var/lib/gridmesh")
    agent = config["agent"]
    assert copies == {} and "broker_auth" not in agent
    assert config["community"] == "community.yaml" and agent["key_file"] == "keys/h001.key"
    assert agent["broker"] == "10.0.0.1:1883" and agent["clock"] == "bus"
    assert agent["modbus"] == {"host": "10.0.0.6", "port": 502}


@pytest.mark.parametrize(("device_file", "options", "message"), [
    ({"agent": {"device": "h002"}}, {}, "h001.yaml: agent.device: is 'h002', but the bundle is for 'h001'"),
    ({"agent": {"modbus": {"hots": "x"}}}, {}, "h001.yaml: agent.modbus.hots: unknown key"),
    ({"agent": {"forecaster": "perfect"}}, {}, "h001.yaml: agent.forecaster: perfect reads"),
    ({"agents": {}}, {}, "h001.yaml: agents: unknown key"),
    ({}, {"broker": None}, "command line: --broker: missing"),
    ({}, {"broker": "nohost"}, "command line: --broker: must be HOST:PORT, got 'nohost'"),
    ({}, {"modbus": "gw:99999"}, "command line: --modbus: must be HOST or HOST:PORT"),
])
def test_a_bad_device_file_or_option_names_where(device_file: dict[str, object], options: dict[str, str],
                                                  message: str) -> None:
    kwargs = {"broker": "10.0.0.1:1883", "modbus": None, **options}
    with pytest.raises(ConfigError) as caught:
        bundle_agent_config("h001", device_file, "h001.yaml", state_dir="/var/lib/gridmesh", **kwargs)
    assert str(caught.value).startswith(message)


def test_broker_credentials_move_into_the_bundle(tmp_path: Path) -> None:
    device_file = {"agent": {"broker_auth": {"ca_file": "tls/ca.crt", "cert_file": "tls/h001.crt",
                                             "key_file": "/secure/h001.key"}}}
    config, copies = bundle_agent_config("h001", device_file, str(tmp_path / "h001.yaml"), broker="b:8883",
                                         modbus=None, state_dir="/var/lib/gridmesh")
    assert config["agent"]["broker_auth"] == {"ca_file": "broker/ca.crt", "cert_file": "broker/client.crt",
                                              "key_file": "broker/client.key"}
    assert copies == {"broker/ca.crt": tmp_path / "tls/ca.crt",
                      "broker/client.crt": tmp_path / "tls/h001.crt",
                      "broker/client.key": Path("/secure/h001.key")}
    with pytest.raises(ConfigError, match=r"auth.yaml: broker_auth.password_file: missing"):
        bundle_agent_config("h001", {}, "command line", broker="b:8883", modbus=None, state_dir="/s",
                            broker_auth=({"username": "h001"}, tmp_path, "auth.yaml", "broker_auth"))


def test_host_and_port() -> None:
    assert parse_host_port("gw", 502) == ("gw", 502)
    assert parse_host_port("gw:1502", 502) == ("gw", 1502)
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_host_port("gw", None)


# -- bad input on the command line: one line, exit 2, nothing written -----------------------


@pytest.fixture
def fleet(tmp_path: Path) -> tuple[Path, Path]:
    return write_registry(tmp_path / "ops")


def bundle_args(registry: Path, keys: Path, out: Path, *extra: str) -> list[str]:
    return ["deploy", "bundle", "--device", "h001", "--arch", "aarch64", "--registry", str(registry),
            "--keys", str(keys), "--broker", "10.0.0.1:1883", "--out", str(out), *extra]


@pytest.mark.parametrize(("change", "message"), [
    (lambda a, k: a.__setitem__(a.index("--device") + 1, "h009"),
     "--device: h009 is not a member of community demo"),
    (lambda a, k: (k / "h001.key").unlink(), "--keys: no key for h001"),
    (lambda a, k: (k / "h001.key").write_text((k / "h002.key").read_text()), "--keys: "),
    (lambda a, k: a.__setitem__(a.index("--arch") + 1, "armv7l"), "--arch: unknown architecture 'armv7l'"),
    (lambda a, k: a.__setitem__(a.index("--state-dir") + 1, "state"),
     "--state-dir: 'state' must be an absolute path"),
])
def test_bad_input_is_one_line_and_writes_nothing(
    fleet: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], change: object,
    message: str,
) -> None:
    registry, keys = fleet
    out_parent = tmp_path / "bundles"
    out_parent.mkdir()
    args = bundle_args(registry, keys, out_parent / "h001", "--state-dir", "/var/lib/gridmesh")
    change(args, keys)  # type: ignore[operator]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"gridmesh deploy: {message}") and "\n" not in err, err
    assert list(out_parent.iterdir()) == []


def test_another_members_key_is_refused_by_name(fleet: tuple[Path, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    registry, keys = fleet
    (keys / "h001.key").write_text((keys / "h002.key").read_text())
    assert main(bundle_args(registry, keys, tmp_path / "out")) == 2
    assert "is not h001's key" in capsys.readouterr().err


def test_a_bad_device_file_is_refused_and_its_scratch_folder_removed(
    fleet: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    registry, keys = fleet
    device_file = tmp_path / "h001.yaml"
    device_file.write_text("agent:\n  modbus: {host: 10.0.0.5, prot: 502}\n")
    out_parent = tmp_path / "bundles"
    out_parent.mkdir()
    assert main(bundle_args(registry, keys, out_parent / "h001", "--device-config", str(device_file))) == 2
    assert f"{device_file}: agent.modbus.prot: unknown key" in capsys.readouterr().err
    assert list(out_parent.iterdir()) == []


def test_a_folder_that_is_not_a_bundle_is_not_overwritten(
    fleet: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    registry, keys = fleet
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(bundle_args(registry, keys, out, "--force")) == 2
    assert "is not empty and holds no bundle" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
