"""The testbed's ledger replicas (``testbed.replicas``): ``gridmesh ledger follow``
processes that must end the run holding the coordinator's head."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from broker.messages import BlockHeader
from ledger.blocks import header_hash
from ledger.errors import LedgerError
from ledger.store import LedgerStore
from simulators.testbed_errors import TestbedError, tail


async def stop_replicas(
    replicas: list[tuple[str, asyncio.subprocess.Process, Path]], out: Path, timeout_s: float = 30.0
) -> dict[str, str]:
    """Wait until every replica holds the coordinator's head, stop it, and return each one's
    head hash; TestbedError if one refused a block or fell behind."""
    if not replicas:
        return {}
    with LedgerStore.open_readonly(out / "ledger.db") as store:
        head = store.head()
    target = -1 if head is None else head.height
    heads: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    for name, process, log_path in replicas:
        path = out / "replicas" / f"{name}.db"
        while True:
            held = _replica_head(path)
            if held is not None and held.height >= target:
                heads[name] = header_hash(held)
                break
            if process.returncode is not None or time.monotonic() > deadline:
                raise TestbedError(f"replica {name} stopped at height {held.height if held else -1} of "
                                   f"{target}:\n{tail(log_path)}")
            await asyncio.sleep(0.1)
        process.terminate()
        if await asyncio.wait_for(process.wait(), 30) != 0:
            raise TestbedError(f"replica {name} refused blocks:\n{tail(log_path)}")
    return heads


def _replica_head(path: Path) -> BlockHeader | None:
    if not path.exists():
        return None
    try:
        with LedgerStore.open_readonly(path) as store:
            return store.head()
    except LedgerError:
        return None  # being created
