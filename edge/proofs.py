"""A member checks its own trades in the ledger. Pure.

The agent keeps the block headers it receives (each checked against the coordinator's
key) and, for each of its accepted orders and reports and each award and settlement it
received, the hash that transaction must have in the ledger. The coordinator sends an
inclusion proof for every one of them; the agent checks the path to the header's Merkle
root. A proof that does not lead to the root, or one for a transaction the agent never
sent or received, is an alarm; so is an expected transaction with no proof within
:data:`PROOF_DEADLINE_SLOTS`. Each is logged and counted. A proof of a transaction
already verified (the same proof delivered again after a reconnect) is only counted.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field

from broker.identity import Verifier
from broker.messages import BlockHeader, InclusionProof, Message, signing_payload
from ledger.merkle import ProofStep, verify_proof
from ledger.transactions import Transaction

log = logging.getLogger("gridmesh.edge.proofs")
PROOF_DEADLINE_SLOTS = 5  # an order is sealed in its slot's block, a settlement two slots on
KEEP_HEADERS = 400


@dataclass
class ProofKeeper:
    device: str
    coordinator_key: str
    counts: Counter[str]
    verifier: Verifier = field(default_factory=Verifier)
    headers: dict[int, BlockHeader] = field(default_factory=dict)
    expected: dict[str, tuple[str, int]] = field(default_factory=dict)  # tx hash -> (what, since slot)
    pending: list[InclusionProof] = field(default_factory=list)  # proofs ahead of their header
    verified: dict[str, int] = field(default_factory=dict)  # tx hash -> block height, the latest ones

    def expect(self, kind: str, msg: Message, slot: int) -> None:
        """A transaction of this member the ledger must hold (as the bytes it was sent in)."""
        tx = Transaction.from_message(kind, msg)
        self.expected[tx.tx_hash] = (tx.label(), slot)

    def forget(self, ref: str) -> None:
        """A refused order or report (by its id): it will not be sealed."""
        for tx_hash in [h for h, (what, _) in self.expected.items() if what.endswith(f" {ref}")]:
            del self.expected[tx_hash]

    def on_header(self, header: BlockHeader) -> None:
        if not _header_signed(self.verifier, header, self.coordinator_key):
            self.counts["bad_header_signature"] += 1
            log.warning("%s: ALARM: block header %d is not signed by the coordinator", self.device,
                        header.height)
            return
        self.headers[header.height] = header
        for old in [h for h in self.headers if h < header.height - KEEP_HEADERS]:
            del self.headers[old]
        waiting, self.pending = self.pending, []
        for proof in waiting:
            self.on_proof(proof)

    def on_proof(self, proof: InclusionProof) -> None:
        header = self.headers.get(proof.height)
        if header is None:
            if len(self.pending) < KEEP_HEADERS:
                self.pending.append(proof)
            return
        for item in proof.items:
            steps = [ProofStep(s.sibling, s.left) for s in item.steps]
            if not verify_proof(item.tx_hash, steps, header.merkle_root):
                self.counts["proof_alarm"] += 1
                log.warning("%s: ALARM: the proof of %s %s.. does not lead to block %d's Merkle root",
                            self.device, item.tx_kind, item.tx_hash[:12], proof.height)
            elif item.tx_hash in self.verified:
                self.counts["proof_repeated"] += 1
            elif self.expected.pop(item.tx_hash, None) is None:
                self.counts["proof_unexpected"] += 1
                log.warning("%s: ALARM: block %d holds %s %s.., which this member never sent or received",
                            self.device, proof.height, item.tx_kind, item.tx_hash[:12])
            else:
                self.counts["proofs_verified"] += 1
                self.verified[item.tx_hash] = proof.height
                if len(self.verified) > 4 * KEEP_HEADERS:
                    del self.verified[next(iter(self.verified))]

    def check_deadlines(self, slot: int) -> None:
        """Count as missing what should have been sealed by now."""
        late = [h for h, (_, since) in self.expected.items() if since < slot - PROOF_DEADLINE_SLOTS]
        for tx_hash in late:
            what, since = self.expected.pop(tx_hash)
            self.counts["proof_missing"] += 1
            log.warning("%s: ALARM: no ledger proof for %s (expected since slot %d)", self.device, what,
                        since)


# (payload digest, signature, key) -> verified; shared by the agents of one process
_CHECKED: dict[tuple[bytes, str, str], bool] = {}


def _header_signed(verifier: Verifier, header: BlockHeader, key: str) -> bool:
    """Whether ``header`` carries the coordinator's signature; the agents one process runs
    receive the same header, so each is checked once. The cache key holds the digest of
    what was signed, so a header altered under a copied signature is checked afresh."""
    cache_key = (hashlib.sha256(signing_payload(header)).digest(), header.sig, key)
    found = _CHECKED.get(cache_key)
    if found is None:
        found = verifier.verify(header, key)
        if found:  # a failure is checked again every time: nothing to gain from caching it
            if len(_CHECKED) > 4 * KEEP_HEADERS:
                _CHECKED.clear()
            _CHECKED[cache_key] = True
    return found
