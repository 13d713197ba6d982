"""The ledger: transactions, blocks, Merkle trees, proof of work, storage and audit.

Pure modules (:mod:`ledger.transactions`, :mod:`ledger.merkle`, :mod:`ledger.pow`,
:mod:`ledger.blocks`, :mod:`ledger.verify`) take data and return data; the SQLite
store (:mod:`ledger.store`), the writer the coordinator uses (:mod:`ledger.writer`)
and the command line (:mod:`ledger.cli`) are the shell around them.
"""
