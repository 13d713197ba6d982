"""Which wheels an edge device needs: targets, platform tags and pip's resolution report.

A device is a CPython 3.11 on 64-bit Linux (a Raspberry Pi on Raspberry Pi OS is
``aarch64``; a PC or a virtual machine ``x86_64``). Everything is installed from
binary wheels only, so the device needs no compiler and no network. This module is
pure: the pip calls are in :mod:`deploy.pip_tools`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import unquote

ARCHES = ("aarch64", "x86_64")
PYTHON_VERSION = "3.11"  # Raspberry Pi OS (Debian 12) ships CPython 3.11
# The newest glibc a wheel may need: Debian 11 and 12, Raspberry Pi OS and Ubuntu 20.04
# and later have at least 2.28.
MAX_GLIBC_MINOR = 28
OLDEST_GLIBC_MINOR = 17  # manylinux2014


class WheelError(ValueError):
    """A requirement without a wheel for the target, or a report pip did not write."""


@dataclass(frozen=True)
class Target:
    """What a bundle is built for: a CPU architecture and a CPython version."""

    arch: str
    python_version: str = PYTHON_VERSION

    def __post_init__(self) -> None:
        if self.arch not in ARCHES:
            raise WheelError(f"unknown architecture {self.arch!r} (known: {', '.join(ARCHES)})")

    @property
    def platforms(self) -> tuple[str, ...]:
        """Every manylinux tag the device accepts, newest first (pip does not widen one
        ``--platform`` to older glibc versions by itself)."""
        minors = range(MAX_GLIBC_MINOR, OLDEST_GLIBC_MINOR - 1, -1)
        return (*(f"manylinux_2_{minor}_{self.arch}" for minor in minors), f"manylinux2014_{self.arch}")

    def pip_options(self) -> list[str]:
        """pip's options for resolving and downloading for this target, wheels only."""
        options = ["--only-binary=:all:", "--python-version", self.python_version,
                   "--implementation", "cp"]
        for platform in self.platforms:
            options += ["--platform", platform]
        return options


@dataclass(frozen=True)
class ResolvedWheel:
    """One distribution pip chose for the target, and the wheel file it chose."""

    name: str
    version: str
    filename: str
    url: str
    sha256: str


_EXTRA = re.compile(r"""\bextra\s*==""")


def runtime_requirements(metadata: str) -> list[str]:
    """The ``Requires-Dist`` lines of a wheel's METADATA that apply without extras."""
    found = []
    for line in metadata.splitlines():
        if not line.strip():
            break  # the headers end at the first blank line; the description follows
        key, _, value = line.partition(":")
        if key == "Requires-Dist" and not _EXTRA.search(value):
            found.append(value.strip())
    return found


def parse_report(text: str) -> list[ResolvedWheel]:
    """The wheels in pip's installation report (``pip install --dry-run --report``)."""
    try:
        report = json.loads(text)
        items = report["install"]
        wheels = []
        for item in items:
            info = item["download_info"]
            url = str(info["url"])
            hashes = info.get("archive_info", {}).get("hashes", {})
            wheels.append(ResolvedWheel(
                name=str(item["metadata"]["name"]), version=str(item["metadata"]["version"]),
                filename=unquote(url.rsplit("/", 1)[-1]), url=url, sha256=str(hashes.get("sha256", "")),
            ))
    except (ValueError, KeyError, TypeError) as exc:
        raise WheelError(f"pip's report is not what was expected: {exc}") from None
    for wheel in wheels:
        if not wheel.filename.endswith(".whl"):
            raise WheelError(f"{wheel.name} {wheel.version}: pip chose {wheel.filename}, not a wheel")
    return wheels


_MISSING = re.compile(r"No matching distribution found for (\S+)")
_VERSIONS = re.compile(r"Could not find a version that satisfies the requirement (\S+)"
                       r"(?: \(from ([^)]*)\))?")


def explain_pip_failure(stderr: str, target: Target) -> str:
    """One line saying which requirement has no wheel for ``target`` (or pip's last error)."""
    missing = _MISSING.search(stderr)
    if missing:
        why = _VERSIONS.search(stderr)
        needed_by = f" (needed by {why.group(2)})" if why and why.group(2) else ""
        return (f"{missing.group(1)}{needed_by}: no wheel for CPython {target.python_version} on "
                f"{target.arch} (manylinux, glibc <= 2.{MAX_GLIBC_MINOR})")
    return pip_error(stderr)


def pip_error(stderr: str) -> str:
    """pip's last error line (or its last line)."""
    errors = [line.strip() for line in stderr.splitlines() if line.strip().startswith(("ERROR", "error"))]
    return errors[-1] if errors else (stderr.strip().splitlines() or ["pip failed"])[-1]
