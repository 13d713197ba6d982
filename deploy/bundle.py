"""Build a device's bundle: everything its agent needs, installable without network.

    OUT/
      manifest.json            SHA-256 of every file; device, target, version
      install.sh               offline, atomic install (see deploy/templates/install.sh)
      check_manifest.py        the manifest check install.sh starts with
      wheelhouse/*.whl         gridmesh (built from this checkout) and its dependencies
      config/agent.yaml        the agent's configuration
      config/community.yaml    the community registry
      config/keys/<id>.key     the device's private key (0600)
      config/broker/           credentials for a locked-down broker, if given (secrets 0600)
      systemd/gridmesh-agent.service

The bundle is written to a scratch folder beside OUT and renamed into place when it
is complete, so a failed build leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from broker.community import Community
from broker.identity import Identity
from deploy import manifest as manifest_module
from deploy.agent_config import SECRET_FILES, AuthSource, bundle_agent_config
from deploy.manifest import MANIFEST, build_manifest, hash_tree, manifest_json
from deploy.pip_tools import build_gridmesh_wheel, wheel_metadata, wheelhouse_for
from deploy.systemd_unit import UNIT_NAME, UnitSpec, render_unit
from deploy.wheels import Target, runtime_requirements
from edge.config import load_agent_config
from gridmesh import __version__
from gridmesh.cli import UsageError
from gridmesh.config import ConfigError, load, read_yaml

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class BundleRequest:
    device: str
    target: Target
    registry: Path
    keys: Path
    out: Path
    wheel_cache: Path
    broker: str | None = None
    device_config: Path | None = None
    modbus: str | None = None
    broker_auth: Path | None = None  # a broker_auth.yaml from gridmesh deploy broker-config
    unit: UnitSpec | None = None  # default: UnitSpec(device)
    force: bool = False


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: dict[str, Any]
    wheels: int
    size_bytes: int
    build_s: float


def load_member_key(request: BundleRequest) -> tuple[Community, Identity]:
    """The registry and the device's key, checked against each other."""
    community = load(Community, request.registry)
    member = community.member(request.device)
    if member is None:
        known = ", ".join(m.id for m in community.members[:8]) or "none"
        more = ", ..." if len(community.members) > 8 else ""
        raise UsageError(f"--device: {request.device} is not a member of community {community.id} "
                         f"in {request.registry} (members: {known}{more})")
    if not community.coordinator_key:
        raise ConfigError(str(request.registry), "coordinator_key",
                          "missing: agents must know the coordinator's public key")
    key_path = request.keys / f"{request.device}.key"
    try:
        identity = Identity.from_private_hex(request.device, key_path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        raise UsageError(f"--keys: no key for {request.device} ({key_path} does not exist)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"--keys: cannot use {key_path}: {exc}") from None
    if identity.public_key_hex != member.public_key:
        raise UsageError(f"--keys: {key_path} is not {request.device}'s key (its public key differs "
                         f"from the one in {request.registry})")
    return community, identity


def _agent_file(request: BundleRequest, state_dir: str) -> tuple[dict[str, Any], dict[str, Path]]:
    data: dict[str, Any] = {}
    source = "command line"
    if request.device_config is not None:
        data, source = read_yaml(request.device_config), str(request.device_config)
    auth: AuthSource | None = None
    if request.broker_auth is not None:
        section = read_yaml(request.broker_auth).get("broker_auth")
        if not isinstance(section, dict):
            raise ConfigError(str(request.broker_auth), "broker_auth", "missing: the file holds no "
                              "broker_auth section (gridmesh deploy broker-config writes one per device)")
        auth = (section, request.broker_auth.parent, str(request.broker_auth), "broker_auth")
    return bundle_agent_config(request.device, data, source, broker=request.broker,
                               modbus=request.modbus, state_dir=state_dir, broker_auth=auth)


def _copy_credentials(copies: dict[str, Path], config: Path) -> None:
    for name, source in copies.items():
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise UsageError(f"broker_auth: cannot read {source}: {exc.strerror}") from None
        _write_bytes(config / name, data, 0o600 if name in SECRET_FILES else 0o644)


def _write_bytes(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out: {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MANIFEST).exists():
            raise UsageError(f"--out: {out} is not empty and holds no bundle; choose another folder")
        if not force:
            raise UsageError(f"--out: {out} holds a bundle already (--force replaces it)")


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def _model_hashes(wheel: Path) -> dict[str, str]:
    """The forecaster models the gridmesh wheel carries (edge/models/*.onnx)."""
    with zipfile.ZipFile(wheel) as archive:
        return {Path(name).name: hashlib.sha256(archive.read(name)).hexdigest()
                for name in sorted(archive.namelist())
                if name.startswith("edge/models/") and name.endswith(".onnx")}


def _install_script(request: BundleRequest, unit: UnitSpec, wheel: Path) -> str:
    text = (TEMPLATES / "install.sh").read_text(encoding="utf-8")
    for key, value in {"DEVICE": request.device, "ARCH": request.target.arch,
                       "PYTHON_VERSION": request.target.python_version, "UNIT_NAME": UNIT_NAME,
                       "USER": unit.user, "STATE_DIR": unit.state_dir, "GRIDMESH_WHEEL": wheel.name}.items():
        text = text.replace(f"@{key}@", value)
    return text


def _fill(tmp: Path, request: BundleRequest, unit: UnitSpec) -> tuple[dict[str, Any], int]:
    agent, credentials = _agent_file(request, unit.state_dir)
    config = tmp / "config"
    _write(config / "agent.yaml", yaml.safe_dump(agent, sort_keys=False))
    _copy_credentials(credentials, config)
    shutil.copyfile(request.registry, config / "community.yaml")
    (config / "keys").mkdir(mode=0o700)
    shutil.copyfile(request.keys / f"{request.device}.key", config / "keys" / f"{request.device}.key")
    (config / "keys" / f"{request.device}.key").chmod(0o600)
    load_agent_config(config / "agent.yaml")  # the agent will accept what the bundle holds

    wheelhouse = tmp / "wheelhouse"
    wheelhouse.mkdir()
    wheel = build_gridmesh_wheel(wheelhouse)
    needed = wheelhouse_for(runtime_requirements(wheel_metadata(wheel)), request.target, request.wheel_cache)
    for path in needed:
        shutil.copyfile(path, wheelhouse / path.name)

    _write(tmp / "systemd" / UNIT_NAME, render_unit(unit))
    _write(tmp / "install.sh", _install_script(request, unit, wheel), 0o755)
    _write(tmp / "check_manifest.py", Path(manifest_module.__file__).read_text(encoding="utf-8"))
    info = {"device": request.device, "arch": request.target.arch,
            "python": request.target.python_version, "gridmesh": __version__,
            "gridmesh_wheel": wheel.name, "models": _model_hashes(wheel),
            "broker": agent["agent"]["broker"], "unit": UNIT_NAME}
    return build_manifest(hash_tree(tmp), info, __version__), len(needed) + 1


def build_bundle(request: BundleRequest) -> Bundle:
    """Build the bundle into ``request.out``; UsageError or ConfigError says what is wrong,
    and then nothing is written."""
    started = time.monotonic()
    load_member_key(request)
    unit = request.unit or UnitSpec(request.device)
    if unit.device != request.device:
        unit = dataclasses.replace(unit, device=request.device)
    _check_out(request.out, request.force)
    request.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{request.out.name}.", dir=request.out.parent))
    try:
        manifest, wheels = _fill(tmp, request, unit)
        _write(tmp / MANIFEST, manifest_json(manifest))
        tmp.chmod(0o755)
        if request.out.exists():  # --force: swap the old bundle out, then drop it
            old = Path(tempfile.mkdtemp(prefix=f".{request.out.name}.old.", dir=request.out.parent))
            os.replace(request.out, old / "bundle")
            os.replace(tmp, request.out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, request.out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    size = sum(p.stat().st_size for p in request.out.rglob("*") if p.is_file())
    return Bundle(request.out, manifest, wheels, size, time.monotonic() - started)
