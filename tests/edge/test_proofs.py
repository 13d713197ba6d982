"""A member checks its own trades in the ledger: proofs that lead to the signed header's
Merkle root pass, anything else is an alarm, and so is a proof that never comes."""

from __future__ import annotations

import dataclasses
from collections import Counter

from broker.identity import Identity
from broker.messages import Award, InclusionProof, MerkleStep, Order, Step
from edge.proofs import PROOF_DEADLINE_SLOTS, ProofKeeper
from ledger.blocks import Block, build_block, member_proofs
from ledger.transactions import Transaction

ME = Identity.derived("h001", 1)
OTHER = Identity.derived("h002", 1)
BOSS = Identity.derived("coordinator", 1)
SLOT = 1000


def setup() -> tuple[ProofKeeper, list[InclusionProof], Block]:
    order = ME.sign(Order("h001", SLOT, 0, "buy", (Step(300, 250_000),), 0))
    award = BOSS.sign(Award("h001", SLOT, order.order_id, "buy", "filled", 300, 300, 200_000, 60_000,
                            "", 5))
    theirs = OTHER.sign(Order("h002", SLOT, 0, "sell", (Step(300, 90_000),), 0))
    txs = [Transaction.from_message("order", order), Transaction.from_message("award", award),
           Transaction.from_message("order", theirs)]
    genesis = build_block(None, -1, 0, [], 0, BOSS)
    block = build_block(genesis.header, SLOT, 5, txs, 0, BOSS)
    keeper = ProofKeeper("h001", BOSS.public_key_hex, Counter())
    keeper.expect("order", order, SLOT - 1)
    keeper.expect("award", award, SLOT)
    [mine] = [p for p in member_proofs(block) if p.device == "h001"]
    return keeper, [dataclasses.replace(mine, items=(item,)) for item in mine.items], block


def test_the_members_own_transactions_are_proven_against_the_header() -> None:
    keeper, proofs, block = setup()
    keeper.on_proof(proofs[0])  # ahead of its header: it waits
    assert keeper.counts["proofs_verified"] == 0 and keeper.pending
    keeper.on_header(block.header)
    keeper.on_proof(proofs[1])
    assert keeper.counts == Counter({"proofs_verified": 2}) and not keeper.expected


def test_a_proof_that_misses_the_root_is_an_alarm() -> None:
    keeper, proofs, block = setup()
    keeper.on_header(block.header)
    item = proofs[0].items[0]
    bent_item = dataclasses.replace(item, steps=(MerkleStep("00" * 32, False), *item.steps[1:]))
    bent = dataclasses.replace(proofs[0], items=(bent_item,))
    keeper.on_proof(bent)
    assert keeper.counts["proof_alarm"] == 1 and len(keeper.expected) == 2


def test_a_transaction_the_member_never_made_is_an_alarm() -> None:
    keeper, proofs, block = setup()
    keeper.on_header(block.header)
    keeper.expected.clear()
    keeper.on_proof(proofs[0])
    assert keeper.counts["proof_unexpected"] == 1


def test_a_proof_that_never_comes_is_counted_missing_after_the_deadline() -> None:
    keeper, _, _ = setup()
    keeper.check_deadlines(SLOT + PROOF_DEADLINE_SLOTS - 1)
    assert keeper.counts["proof_missing"] == 0
    keeper.check_deadlines(SLOT + PROOF_DEADLINE_SLOTS + 1)
    assert keeper.counts["proof_missing"] == 2 and not keeper.expected


def test_a_header_not_signed_by_the_coordinator_is_refused() -> None:
    keeper, _, block = setup()
    forged = ME.sign(dataclasses.replace(block.header, sig=""))
    keeper.on_header(forged)
    assert keeper.counts["bad_header_signature"] == 1 and not keeper.headers


def test_a_header_altered_under_a_copied_signature_is_still_refused() -> None:
    keeper, _, block = setup()
    keeper.on_header(block.header)  # verified, and remembered
    altered = dataclasses.replace(block.header, merkle_root="ab" * 32)  # the same signature
    other = ProofKeeper("h002", BOSS.public_key_hex, Counter())
    other.on_header(altered)
    assert other.counts["bad_header_signature"] == 1 and not other.headers
