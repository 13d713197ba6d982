"""pip, run as a subprocess: build gridmesh's wheel, resolve and download for a device.

Resolution uses ``pip install --dry-run --ignore-installed --report``, which works out
what a target would install from the index's metadata without installing anything.
Downloads go to a wheel cache per target; a bundle takes what an offline resolution
against that cache chooses, so a second bundle for the same target needs no network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

from deploy.wheels import ResolvedWheel, Target, WheelError, explain_pip_failure, parse_report, pip_error

SOURCE_ROOT = Path(__file__).resolve().parent.parent
PIP_TIMEOUT_S = 900
REPRODUCIBLE_EPOCH = "315532800"  # 1980-01-01, the earliest time a zip archive holds


def default_cache() -> Path:
    """Where downloaded wheels are kept between bundles (per target)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gridmesh" / "wheels"


def _pip(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=PIP_TIMEOUT_S, check=False)


def build_gridmesh_wheel(dest: Path, source: Path = SOURCE_ROOT) -> Path:
    """Build gridmesh's wheel from the checkout at ``source`` into ``dest``.

    The packages are copied to a scratch folder first, so the build never reuses a
    stale ``build/`` folder of the checkout and leaves nothing in it."""
    pyproject = source / "pyproject.toml"
    if not pyproject.is_file():
        raise WheelError(f"{source} is not a gridmesh source checkout (no pyproject.toml); "
                         "bundles are built from one")
    project = tomllib.loads(pyproject.read_text())
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    with tempfile.TemporaryDirectory(prefix="gridmesh-wheel-") as scratch:
        tree = Path(scratch) / "src"
        tree.mkdir()
        for name in ("pyproject.toml", str(project["project"].get("readme", "README.md"))):
            shutil.copy2(source / name, tree / name)
        for package in sorted({pattern.rstrip("*") for pattern in include}):
            if (source / package).is_dir():
                shutil.copytree(source / package, tree / package,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        # the same sources give the same wheel (and so the same bundle version)
        done = _pip(["wheel", "--no-deps", "--quiet", "--wheel-dir", str(dest), str(tree)],
                    env={"SOURCE_DATE_EPOCH": REPRODUCIBLE_EPOCH})
        if done.returncode != 0:
            raise WheelError(f"building the gridmesh wheel failed: {pip_error(done.stderr)}")
    wheels = sorted(dest.glob("gridmesh-*.whl"))
    if len(wheels) != 1:
        raise WheelError(f"building the gridmesh wheel left {len(wheels)} wheels in {dest}")
    return wheels[0]


def wheel_metadata(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return archive.read(name).decode()


def resolve(requirements: list[str], target: Target, find_links: Path | None = None) -> list[ResolvedWheel]:
    """What ``target`` would install for ``requirements``: from the index, or with
    ``find_links`` from that folder alone (no network)."""
    with tempfile.TemporaryDirectory(prefix="gridmesh-resolve-") as scratch:
        report = Path(scratch) / "report.json"
        args = ["install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report),
                *target.pip_options()]
        if find_links is not None:
            args += ["--no-index", "--find-links", str(find_links)]
        done = _pip([*args, *requirements])
        if done.returncode != 0:
            raise WheelError(explain_pip_failure(done.stderr, target))
        return parse_report(report.read_text())


def download(requirements: list[str], target: Target, dest: Path) -> None:
    """Download the wheels ``requirements`` need on ``target`` into ``dest`` (pip keeps
    what is there already)."""
    dest.mkdir(parents=True, exist_ok=True)
    done = _pip(["download", "--quiet", "--dest", str(dest), *target.pip_options(), *requirements])
    if done.returncode != 0:
        raise WheelError(explain_pip_failure(done.stderr, target))


def wheelhouse_for(requirements: list[str], target: Target, cache: Path) -> list[Path]:
    """The wheel files ``target`` needs for ``requirements``, from the target's cache,
    downloading only when the cache cannot satisfy them."""
    folder = cache / f"cp{target.python_version.replace('.', '')}-{target.arch}"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        chosen = resolve(requirements, target, find_links=folder)
    except WheelError:
        download(requirements, target, folder)
        chosen = resolve(requirements, target, find_links=folder)
    return [folder / wheel.filename for wheel in chosen]
