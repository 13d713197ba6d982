"""A bundle, end to end: build it for x86_64, install it offline into a fresh folder, run
its agent against a running testbed and see it trade; then what the install script does
with a rerun, a damaged bundle and an install that fails half-way.

The testbed leaves h001's agent to the outside (``--external-agents h001``): it writes
h001's configuration and key, announces them and waits. The bundle is built from that
run's own registry, key and agent configuration, installed with the network switched
off (``unshare -n`` where this user may; otherwise with pip's index switched off alone),
and the agent is started from the installed virtualenv. Needs pip's index once to fill
the wheel cache (about 55 MB); later runs take the wheels from the cache.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gridmesh.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.broker]
SEED, HOUSEHOLDS, SLOTS = 11, 3, 3
START = "2016-06-06T10:00"  # PV households sell their surplus to the others
TESTBED = "testbed:\n  prosumer_pct: 0\n  pv_only_pct: 50\n"


def device_python() -> str:
    """A CPython 3.11 outside any virtualenv, as a device has."""
    system = Path("/usr/bin/python3")
    if system.exists():
        version = subprocess.run([str(system), "-c", "import sys; print(sys.version_info[:2])"],
                                 capture_output=True, text=True, check=False).stdout.strip()
        if version == "(3, 11)":
            return str(system)
    return str(getattr(sys, "_base_executable", sys.executable))


def offline() -> list[str]:
    """A command prefix that takes the network away, where this user may."""
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True,
                                                  check=False).returncode == 0:
        return ["unshare", "-n"]
    return []


def install(bundle: Path, prefix: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(prefix.parent), "LANG": "C.UTF-8"}
    return subprocess.run([*offline(), "sh", str(bundle / "install.sh"), "--prefix", str(prefix),
                           "--python", device_python()], capture_output=True, text=True, env=env,
                          cwd=prefix.parent if prefix.parent.exists() else "/", timeout=300, check=False)


@dataclass
class Deployed:
    run: Path
    bundle: Path
    prefix: Path
    version: str
    build_s: float
    install_s: float
    first_install: subprocess.CompletedProcess[str]
    agent: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    work = tmp_path_factory.mktemp("bundle-e2e")
    config = work / "testbed.yaml"
    config.write_text(TESTBED)
    run = work / "run"
    testbed = subprocess.Popen(
        [sys.executable, "-m", "gridmesh", "testbed", "--config", str(config), "--households",
         str(HOUSEHOLDS), "--slots", str(SLOTS), "--seed", str(SEED), "--start", START, "--broker",
         "mosquitto" if shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists() else "embedded",
         "--external-agents", "h001", "--out", str(run), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert testbed.stderr is not None
        for line in testbed.stderr:  # the run announces h001 once its configuration is written
            if "external agent h001" in line:
                break
        else:
            pytest.fail(f"the testbed ended without waiting for h001: {testbed.communicate()}")
        external = json.loads((run / "external.json").read_text())
        config_dir = Path(external["config_dir"])

        bundle = work / "bundles" / "h001"
        started = time.monotonic()
        assert main(["deploy", "bundle", "--device", "h001", "--arch", "x86_64",
                     "--registry", str(config_dir / "community.yaml"), "--keys", str(config_dir / "keys"),
                     "--device-config", external["agents"]["h001"], "--broker", external["broker"],
                     "--state-dir", str(work / "state"), "--out", str(bundle)]) == 0
        build_s = time.monotonic() - started

        prefix = work / "opt" / "gridmesh"
        version = json.loads((bundle / "manifest.json").read_text())["version"]
        leftover = prefix / "versions" / version
        leftover.mkdir(parents=True)  # what an interrupted install of this version left
        (leftover / "half-written").write_text("")
        started = time.monotonic()
        first = install(bundle, prefix)
        install_s = time.monotonic() - started
        assert first.returncode == 0, first.stderr

        agent = subprocess.run(
            [str(prefix / "current" / "venv" / "bin" / "gridmesh"), "agent", "--config",
             str(prefix / "current" / "config" / "agent.yaml"), "--stats-dir", str(run / "agents")],
            capture_output=True, text=True, timeout=180, env={"PATH": "/usr/bin:/bin"}, cwd=work, check=False)
        _, err = testbed.communicate(timeout=120)
        assert testbed.returncode == 0, f"testbed: {err[-2000:]}\nagent: {agent.stderr[-2000:]}"
        print(f"bundle built in {build_s:.1f} s, installed offline in {install_s:.1f} s")
        yield Deployed(run, bundle, prefix, version, build_s, install_s, first, agent)
    finally:
        if testbed.returncode is None:
            testbed.kill()
            testbed.communicate()


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_the_installed_agent_trades_and_the_ledger_audits(deployed: Deployed) -> None:
    assert deployed.agent.returncode == 0, deployed.agent.stderr
    verdicts = rows(deployed.run / "coordinator.db",
                    "SELECT ref, accepted FROM verdicts WHERE kind = 'order' AND device = 'h001'")
    assert verdicts and all(accepted for _, accepted in verdicts)
    awards = [json.loads(str(p)) for (p,) in rows(deployed.run / "coordinator.db",
                                                  "SELECT payload FROM awards WHERE device = 'h001'")]
    assert sorted(a["order_id"] for a in awards) == sorted(str(ref) for ref, _ in verdicts)
    assert any(a["p2p_wh"] > 0 for a in awards)  # it sold to its peers
    assert main(["ledger", "audit", str(deployed.run / "ledger.db"), "--replay"]) == 0
    summary = json.loads((deployed.run / "summary.json").read_text())
    assert summary["ledger_height"] > 0 and summary["trades"] > 0


def test_the_agent_ran_from_the_installed_virtualenv(deployed: Deployed) -> None:
    venv_python = deployed.prefix / "current" / "venv" / "bin" / "python"
    code = "import edge.agent, onnxruntime; print(edge.agent.__file__)"
    where = subprocess.run([str(venv_python), "-I", "-c", code], capture_output=True, text=True,
                           check=True, env={"PATH": "/usr/bin:/bin"}, cwd=deployed.prefix).stdout
    assert Path(where.strip()).resolve().is_relative_to(deployed.prefix / "versions" / deployed.version)
    assert os.readlink(deployed.prefix / "current") == f"versions/{deployed.version}"
    key = deployed.prefix / "current" / "config" / "keys" / "h001.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert not (deployed.prefix / "versions" / deployed.version / "half-written").exists()


def test_the_unit_names_the_installed_agent_and_passes_systemds_checks(deployed: Deployed) -> None:
    unit = deployed.prefix / "current" / "gridmesh-agent.service"
    text = unit.read_text()
    assert f"ExecStart={deployed.prefix}/current/venv/bin/gridmesh agent --config " \
           f"{deployed.prefix}/current/config/agent.yaml" in text
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the unit's text was checked, not systemd's view")
    verify = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, check=False)
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr
    security = subprocess.run([analyze, "security", "--offline=true", str(unit)], capture_output=True,
                              text=True, check=False)
    level = security.stdout.rsplit("Overall exposure level for gridmesh-agent.service:", 1)[1]
    exposure = float(level.split()[0])
    assert exposure <= 2.5, security.stdout[-500:]


def test_a_rerun_changes_nothing(deployed: Deployed) -> None:
    again = install(deployed.bundle, deployed.prefix)
    assert again.returncode == 0, again.stderr
    assert "installed already" in again.stdout
    assert os.readlink(deployed.prefix / "current") == f"versions/{deployed.version}"


def test_a_damaged_bundle_installs_nothing(deployed: Deployed, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged"
    shutil.copytree(deployed.bundle, damaged)
    wheel = next((damaged / "wheelhouse").glob("numpy-*.whl"))
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0xFF
    wheel.write_bytes(bytes(data))
    prefix = tmp_path / "fresh"
    done = install(damaged, prefix)
    assert done.returncode == 1
    assert f"wheelhouse/{wheel.name}: SHA-256 differs from the manifest" in done.stderr
    assert "the bundle is damaged; nothing was installed" in done.stderr
    assert not prefix.exists()


def test_an_install_that_fails_half_way_keeps_the_running_version(deployed: Deployed, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(deployed.bundle, broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    wheel = next((broken / "wheelhouse").glob("pymodbus-*.whl"))  # a dependency pip will miss
    wheel.unlink()
    del manifest["files"][f"wheelhouse/{wheel.name}"]
    manifest["version"] = "0.1.0-broken"
    (broken / "manifest.json").write_text(json.dumps(manifest))
    done = install(broken, deployed.prefix)
    assert done.returncode != 0
    assert "pymodbus" in done.stderr
    assert os.readlink(deployed.prefix / "current") == f"versions/{deployed.version}"
    assert sorted(p.name for p in (deployed.prefix / "versions").iterdir()) == [deployed.version]
