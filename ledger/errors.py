"""The ledger's exception tree: every error the ledger raises is a :class:`LedgerError`.

Callers that only want "the ledger said no" catch :class:`LedgerError`; the
subclasses say which part said it. The command line turns any of them into one
line and exit code 2.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base class of every error raised by the ``ledger`` package."""


class TransactionError(LedgerError):
    """A transaction that cannot be built, or whose body does not decode."""


class ChainError(LedgerError):
    """A block that does not fit the chain it is added to (height, link, genesis, slot)."""


class MiningError(LedgerError):
    """No nonce in the allowed range meets the difficulty (practically never happens)."""


class StorageError(LedgerError):
    """A ledger file that cannot be used: missing, not SQLite, corrupt or of an unknown version."""


class RecordError(LedgerError):
    """A stored row that is not what the writer wrote: the audit reports it as a failure.

    ``height`` names the block; ``tx_index`` and ``tx_hash`` name the transaction when
    the problem lies in one (``None`` otherwise).
    """

    def __init__(
        self, height: int, tx_index: int | None, tx_hash: str | None, reason: str
    ) -> None:
        where = f"block {height}" if tx_index is None else f"block {height}, transaction {tx_index}"
        super().__init__(f"{where}: {reason}")
        self.height = height
        self.tx_index = tx_index
        self.tx_hash = tx_hash
        self.reason = reason
