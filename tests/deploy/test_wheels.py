"""Every package the edge agent needs has a wheel for a Raspberry Pi (aarch64, CPython 3.11).

``gridmesh deploy check-wheels`` resolves gridmesh's runtime dependencies (as its wheel,
built from this checkout, states them) from the package index's metadata for the target,
wheels only, without downloading or installing them. Needs the package index (PyPI);
takes a few seconds.
"""

from __future__ import annotations

import json

import pytest

from gridmesh.cli import main

pytestmark = pytest.mark.slow
EDGE_BINARIES = ("numpy", "onnxruntime", "cryptography", "uvloop", "PyYAML")  # compiled: per CPU


def test_every_edge_dependency_has_a_wheel_for_a_pi(capsys: pytest.CaptureFixture[str]) -> None:
    arch = "aarch64"
    assert main(["deploy", "check-wheels", "--arch", arch, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    wheels = {w["name"]: w["file"] for w in report["wheels"]}
    assert report == {**report, "arch": arch, "python": "3.11"}
    for name in EDGE_BINARIES:
        assert name in wheels, f"{name} is not among {sorted(wheels)}"
        assert wheels[name].endswith(f"_{arch}.whl") and "-cp311-" in wheels[name], wheels[name]
    assert all(f.endswith(".whl") for f in wheels.values())
    assert all("x86_64" not in f for f in wheels.values())


def test_an_unknown_arch_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "check-wheels", "--arch", "armv7l"]) == 2
    assert capsys.readouterr().err.strip() == (
        "gridmesh deploy: --arch: unknown architecture 'armv7l' (known: aarch64, x86_64)")
