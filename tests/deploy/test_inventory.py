"""A fleet's Ansible inventory from the registry and hosts.csv, next to the playbook."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from deploy_registry import write_registry

from gridmesh.cli import build_parser, main

HOSTS = ("device,address,arch,user,port,modbus\n"
         "h001,192.168.1.21,aarch64,pi,22,192.168.1.50\n"
         "h002,192.168.1.22,aarch64,,,\n"
         "h003,pc-h003.local,x86_64,ops,2222,192.168.1.52:1502\n")


@pytest.fixture
def ops(tmp_path: Path) -> Path:
    write_registry(tmp_path / "ops")
    (tmp_path / "ops" / "devices").mkdir()
    (tmp_path / "ops" / "devices" / "h002.yaml").write_text("agent:\n  modbus: {host: 192.168.1.51}\n")
    return tmp_path / "ops"


def inventory(ops: Path, hosts: str, *extra: str) -> int:
    (ops / "hosts.csv").write_text(hosts)
    return main(["deploy", "inventory", "--registry", str(ops / "community.yaml"), "--hosts",
                 str(ops / "hosts.csv"), "--keys", str(ops / "keys"), "--broker", "192.168.1.10:1883",
                 "--devices", str(ops / "devices"), "--out", str(ops / "fleet"), *extra])


def test_one_host_per_member_with_its_device_arch_and_address(ops: Path) -> None:
    assert inventory(ops, HOSTS) == 0
    data = yaml.safe_load((ops / "fleet" / "inventory.yml").read_text())
    group = data["all"]["children"]["gridmesh_agents"]
    assert group["vars"]["gridmesh_community"] == "demo"
    hosts = group["hosts"]
    assert sorted(hosts) == ["h001", "h002", "h003"]
    assert {k: hosts["h001"][k] for k in ("ansible_host", "ansible_user", "ansible_port", "gridmesh_device",
                                          "gridmesh_arch", "gridmesh_role")} == {
        "ansible_host": "192.168.1.21", "ansible_user": "pi", "ansible_port": 22, "gridmesh_device": "h001",
        "gridmesh_arch": "aarch64", "gridmesh_role": "prosumer"}
    assert "ansible_user" not in hosts["h002"] and hosts["h003"]["ansible_port"] == 2222
    assert hosts["h003"]["gridmesh_arch"] == "x86_64"


def test_each_hosts_bundle_arguments_are_what_deploy_bundle_takes(ops: Path) -> None:
    assert inventory(ops, HOSTS) == 0
    hosts = yaml.safe_load((ops / "fleet" / "inventory.yml").read_text())["all"]["children"][
        "gridmesh_agents"]["hosts"]
    parser = build_parser()
    for device, host in hosts.items():
        args = parser.parse_args(["deploy", "bundle", *host["gridmesh_bundle_args"], "--out", "x"])
        assert (args.device, args.arch, args.broker) == (device, host["gridmesh_arch"], "192.168.1.10:1883")
        assert args.registry == (ops / "community.yaml").resolve() and args.keys == (ops / "keys").resolve()
    h002 = parser.parse_args(["deploy", "bundle", *hosts["h002"]["gridmesh_bundle_args"], "--out", "x"])
    assert h002.device_config == (ops / "devices" / "h002.yaml").resolve() and h002.modbus is None
    h003 = parser.parse_args(["deploy", "bundle", *hosts["h003"]["gridmesh_bundle_args"], "--out", "x"])
    assert h003.device_config is None and h003.modbus == "192.168.1.52:1502"


def test_a_locked_down_brokers_credentials_go_into_each_bundle(ops: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    broker = ops / "broker"
    assert main(["deploy", "broker-config", "--community", str(ops / "community.yaml"), "--host", "10.0.0.1",
                 "--out", str(broker)]) == 0
    assert inventory(ops, HOSTS, "--broker-files", str(broker)) == 0
    hosts = yaml.safe_load((ops / "fleet" / "inventory.yml").read_text())["all"]["children"][
        "gridmesh_agents"]["hosts"]
    for device, host in hosts.items():
        args = build_parser().parse_args(["deploy", "bundle", *host["gridmesh_bundle_args"], "--out", "x"])
        assert args.broker_auth == (broker / "devices" / device / "broker_auth.yaml").resolve()
    shutil.rmtree(broker / "devices" / "h002")
    assert inventory(ops, HOSTS, "--broker-files", str(broker), "--force") == 2
    assert "no devices/<id>/broker_auth.yaml" in capsys.readouterr().err


def test_the_playbook_beside_it_builds_pushes_and_installs(ops: Path) -> None:
    assert inventory(ops, HOSTS) == 0
    [play] = yaml.safe_load((ops / "fleet" / "flash.yml").read_text())
    assert play["hosts"] == "gridmesh_agents"
    build = play["tasks"][0]
    assert build["delegate_to"] == "localhost"
    argv = build["ansible.builtin.command"]["argv"]
    assert "['gridmesh', 'deploy', 'bundle'] + gridmesh_bundle_args" in argv
    install = play["tasks"][2]["block"][1]
    assert install["become"] is True and "--system" in install["ansible.builtin.command"]["argv"]
    playbook = shutil.which("ansible-playbook")
    if playbook is None:
        pytest.skip("ansible is not installed (not a dependency): the playbook's YAML was checked")
    done = subprocess.run([playbook, "--syntax-check", "-i", str(ops / "fleet" / "inventory.yml"),
                           str(ops / "fleet" / "flash.yml")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("hosts", "message"), [
    (HOSTS.replace("h003,pc-h003.local,x86_64,ops,2222,192.168.1.52:1502\n", ""),
     "hosts.csv: no row for member(s) h003"),
    (HOSTS + "h009,192.168.1.29,aarch64,,,\n", "hosts.csv: h009 not a member of community demo"),
    (HOSTS.replace("h002,192.168.1.22,aarch64", "h002,192.168.1.22,armv7l"),
     "hosts.csv: line 3: arch: 'armv7l' is not one of aarch64, x86_64"),
    (HOSTS.replace("h002,192.168.1.22,aarch64,,,", "h002,,aarch64,,,"),
     "hosts.csv: line 3: address: missing"),
    (HOSTS.replace("modbus\n", "modbus,rack\n"), "hosts.csv: line 1: unknown column 'rack'"),
    (HOSTS + "h001,192.168.1.99,aarch64,,,\n", "hosts.csv: line 5: device: h001 has a row already"),
])
def test_a_bad_table_is_one_line_naming_where_and_writes_nothing(
    ops: Path, hosts: str, message: str, capsys: pytest.CaptureFixture[str],
) -> None:
    assert inventory(ops, hosts) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"gridmesh deploy: {ops / message}"), err
    assert not (ops / "fleet").exists()


def test_an_inventory_is_not_overwritten_without_force(ops: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert inventory(ops, HOSTS) == 0
    assert inventory(ops, HOSTS) == 2
    assert "holds inventory.yml, flash.yml already (--force overwrites)" in capsys.readouterr().err
    assert inventory(ops, HOSTS, "--force") == 0
