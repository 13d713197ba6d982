"""Reading a registry and a CA, and writing a broker's files: all or nothing.

The files go into a fresh folder beside ``out`` and are renamed into place at the end,
so a failure leaves no half-written configuration; an existing ``out`` is replaced only
when asked to (``--force``). Private keys and passwords are 0600, folders 0700.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path

from broker.community import Community
from deploy.broker_config import GeneratedFile
from deploy.pki import Authority, PkiError
from gridmesh.config import ConfigError, load


class BrokerFilesError(RuntimeError):
    """The files cannot be read or written; the message names the path."""


def load_registry(path: Path) -> Community:
    """The community registry (``community.yaml`` as the testbed writes it); ConfigError
    names the file and key."""
    community = load(Community, path)
    if not community.members:
        raise ConfigError(str(path), "members", "the registry lists no members to give credentials")
    return community


def load_authority(folder: Path) -> Authority:
    """The CA in ``folder`` (``ca.crt`` and ``ca.key``, as an earlier output holds them)."""
    try:
        cert, key = (folder / "ca.crt").read_bytes(), (folder / "ca.key").read_bytes()
    except OSError as exc:
        raise BrokerFilesError(f"--ca: cannot read {exc.filename}: {exc.strerror}") from None
    try:
        return Authority.load(cert, key)
    except PkiError as exc:
        raise BrokerFilesError(f"--ca: {folder}: {exc}") from None


def check_target(out: Path, force: bool) -> None:
    """BrokerFilesError unless ``out`` may be written: new, empty, or ``force``."""
    if out.exists() and not out.is_dir():
        raise BrokerFilesError(f"--out: {out} exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not force:
        raise BrokerFilesError(f"--out: {out} exists and is not empty; pass --force to replace it")


def write_all(files: list[GeneratedFile], out: Path, force: bool) -> None:
    """Write ``files`` under ``out`` at once: into a new folder, renamed into place."""
    check_target(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for generated in files:
            _write(staging / generated.path, generated)
        if out.exists():
            retired = out.parent / f".{out.name}.old-{secrets.token_hex(4)}"
            os.rename(out, retired)
            os.rename(staging, out)
            shutil.rmtree(retired)
        else:
            os.rename(staging, out)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise BrokerFilesError(f"--out: cannot write {out}: {exc.strerror}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _write(path: Path, generated: GeneratedFile) -> None:
    if not path.parent.is_dir():
        _write_folder(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, generated.mode)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), generated.mode)  # whatever the umask
        fh.write(generated.content)


def _write_folder(folder: Path) -> None:
    if not folder.parent.is_dir():
        _write_folder(folder.parent)
    folder.mkdir(mode=0o700)
