"""The audit of a ledger file, spread over processes.

Checking signatures dominates an audit, and each block can be checked knowing only
the genesis block (the community's keys) and the header before it. The chain is cut
into consecutive segments of about equal transaction count; each worker process opens
the file read-only and audits its segment with :func:`ledger.verify.verify_chain`;
the results are joined in chain order, so the first failure reported is the same one
a single process would report.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ledger.difficulty import window_size
from ledger.errors import LedgerError, RecordError, TransactionError
from ledger.store import LedgerStore
from ledger.verify import AuditFailure, AuditSummary, join_segments, verify_chain

MIN_TX_PER_WORKER = 5_000  # below this, starting a process costs more than it saves


def audit_file(
    path: Path, workers: int | None = None, now_s: int | None = None
) -> AuditSummary | AuditFailure:
    """Audit the ledger at ``path`` with up to ``workers`` processes (default: one per CPU);
    blocks dated after ``now_s`` (default: the system clock) fail as from the future.

    Raises :class:`LedgerError` if the file cannot be opened as a ledger.
    """
    now_s = int(time.time()) if now_s is None else now_s
    with LedgerStore.open_readonly(path) as store:
        try:
            counts = [(h.height, h.tx_count) for h in store.headers()]
        except LedgerError:
            counts = []
        segments = split_heights(counts, workers or os.cpu_count() or 1)
        if len(segments) < 2:
            return verify_chain(store.blocks(), now_s=now_s)
    # fork starts a worker in milliseconds; spawn re-imports everything (about a second)
    fork = "fork" in multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if fork else "spawn")
    with ProcessPoolExecutor(len(segments), mp_context=context) as pool:
        futures = [pool.submit(audit_segment, path, first, last, now_s) for first, last in segments]
        return join_segments(f.result() for f in futures)


def split_heights(tx_counts: list[tuple[int, int]], workers: int) -> list[tuple[int, int]]:
    """Cut heights into at most ``workers`` consecutive (first, last) ranges of about
    equal transaction count, none smaller than :data:`MIN_TX_PER_WORKER`."""
    total = sum(count for _, count in tx_counts)
    if not tx_counts:
        return []
    parts = max(1, min(workers, total // MIN_TX_PER_WORKER, len(tx_counts)))
    if parts == 1:
        return [(tx_counts[0][0], tx_counts[-1][0])]
    ranges: list[tuple[int, int]] = []
    first, running = tx_counts[0][0], 0
    for index, (height, count) in enumerate(tx_counts[:-1]):
        running += count
        target = total * (len(ranges) + 1) / parts
        following = tx_counts[index + 1][1]
        if len(ranges) < parts - 1 and abs(running - target) <= abs(running + following - target):
            ranges.append((first, height))
            first = height + 1
    ranges.append((first, tx_counts[-1][0]))
    return ranges


def audit_segment(path: Path, first: int, last: int, now_s: int | None = None) -> AuditSummary | AuditFailure:
    """Audit heights ``first..last`` of the ledger at ``path`` (run in a worker)."""
    with LedgerStore.open_readonly(path) as store:
        if first == 0:
            return verify_chain(store.blocks(0, last), now_s=now_s)
        try:
            genesis = store.block(0)
            previous = store.block(first - 1)
            if genesis is None or previous is None:
                return AuditFailure(first - 1, None, None, "block missing from the store")
            rules = genesis.transactions[0].community().ledger
            window = list(store.headers(max(0, first - window_size(rules)), first - 1))
        except (RecordError, TransactionError) as exc:  # an earlier segment reports this first
            if isinstance(exc, RecordError):
                return AuditFailure(exc.height, exc.tx_index, exc.tx_hash, exc.reason)
            return AuditFailure(0, 0, None, str(exc))
        return verify_chain(store.blocks(first, last), after=(genesis, previous, window), now_s=now_s)
