"""A bundle's manifest: the SHA-256 of every file, and the check an install starts with.

``manifest.json`` lists every file of the bundle with its SHA-256 and names the
device, the target and the bundle's version (gridmesh's version and a digest of the
whole content, so two different bundles never share an install folder). The module
uses the standard library alone: a bundle carries it as ``check_manifest.py`` and its
install script runs it with the device's Python before anything is installed::

    python3 check_manifest.py BUNDLE_DIR      # exit 0: intact; 1: one line per problem
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
FORMAT = 1


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_tree(root: Path) -> dict[str, str]:
    """Every file below ``root`` but the manifest, by its POSIX path relative to ``root``."""
    files = (path for path in sorted(root.rglob("*")) if path.is_file())
    return {path.relative_to(root).as_posix(): sha256_file(path)
            for path in files if path.relative_to(root).as_posix() != MANIFEST}


def content_digest(files: Mapping[str, str]) -> str:
    """One SHA-256 over every file's path and hash."""
    lines = "".join(f"{name}\t{files[name]}\n" for name in sorted(files))
    return hashlib.sha256(lines.encode()).hexdigest()


def build_manifest(files: Mapping[str, str], info: Mapping[str, Any], package_version: str) -> dict[str, Any]:
    """The manifest for ``files`` (path -> SHA-256) with ``info`` (device, arch, ...)."""
    return {
        "format": FORMAT,
        **info,
        "version": f"{package_version}-{content_digest(files)[:12]}",
        "files": dict(sorted(files.items())),
    }


def manifest_json(manifest: Mapping[str, Any]) -> str:
    return json.dumps(manifest, indent=2, sort_keys=True) + "\n"


def problems(manifest: Mapping[str, Any], actual: Mapping[str, str]) -> list[str]:
    """What differs between the manifest and the files found: missing, changed, unlisted."""
    listed = manifest.get("files")
    if manifest.get("format") != FORMAT or not isinstance(listed, dict):
        return [f"{MANIFEST}: not a format-{FORMAT} bundle manifest"]
    found = []
    for name in sorted(listed):
        if name not in actual:
            found.append(f"{name}: missing")
        elif actual[name] != listed[name]:
            found.append(f"{name}: SHA-256 differs from the manifest")
    found += [f"{name}: not in the manifest" for name in sorted(set(actual) - set(listed))]
    return found


def check_bundle(root: Path) -> tuple[dict[str, Any], list[str]]:
    """The bundle's manifest and its problems (empty when every file is intact)."""
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {}, [f"{root / MANIFEST}: cannot read: {exc}"]
    if not isinstance(manifest, dict):
        return {}, [f"{MANIFEST}: not a bundle manifest"]
    return manifest, problems(manifest, hash_tree(root))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: check_manifest.py BUNDLE_DIR", file=sys.stderr)
        return 2
    manifest, found = check_bundle(Path(argv[0]))
    for line in found:
        print(f"bundle {argv[0]}: {line}", file=sys.stderr)
    if not found:
        print(manifest["version"])
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
