"""Merkle roots and inclusion proofs: known vectors, round trips, tampering."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.merkle import (
    EMPTY_ROOT,
    ProofStep,
    inclusion_proof,
    merkle_root,
    verify_proof,
)

A, B, C = ("aa" * 32, "bb" * 32, "cc" * 32)


def leaf(hex_leaf: str) -> bytes:
    return hashlib.sha256(b"\x00" + bytes.fromhex(hex_leaf)).digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


hex_hashes = st.binary(min_size=32, max_size=32).map(bytes.hex)


def test_empty_tree_has_the_hash_of_nothing() -> None:
    assert merkle_root([]) == EMPTY_ROOT == hashlib.sha256(b"").hexdigest()


def test_one_leaf_is_its_prefixed_hash() -> None:
    assert merkle_root([A]) == leaf(A).hex()


def test_two_leaves_make_one_prefixed_node() -> None:
    assert merkle_root([A, B]) == node(leaf(A), leaf(B)).hex()


def test_an_odd_last_node_is_promoted_not_duplicated() -> None:
    assert merkle_root([A, B, C]) == node(node(leaf(A), leaf(B)), leaf(C)).hex()
    assert merkle_root([A, B, C]) != merkle_root([A, B, C, C])


def test_five_leaves_promote_twice() -> None:
    d, e = "dd" * 32, "ee" * 32
    left = node(node(leaf(A), leaf(B)), node(leaf(C), leaf(d)))
    assert merkle_root([A, B, C, d, e]) == node(left, leaf(e)).hex()


def test_pinned_vector() -> None:
    # Pinned so that any change to the tree's construction shows up as a changed root.
    assert merkle_root([A, B, C]) == "d73cea60f2ce124730a688b2456b84beb6fed822ab3e6d23c30c1ccdcbb5433b"


def test_an_inner_node_cannot_pass_as_a_leaf() -> None:
    inner = node(leaf(A), leaf(B)).hex()
    assert merkle_root([inner]) != merkle_root([A, B])


def test_order_matters() -> None:
    assert merkle_root([A, B]) != merkle_root([B, A])


@given(st.lists(hex_hashes, min_size=1, max_size=17))
def test_every_leaf_proves_its_inclusion(leaves: list[str]) -> None:
    root = merkle_root(leaves)
    for index, value in enumerate(leaves):
        assert verify_proof(value, inclusion_proof(leaves, index), root)


def test_proof_lengths_are_logarithmic() -> None:
    for size in range(1, 18):
        leaves = [f"{i:064x}" for i in range(size)]
        longest = max(len(inclusion_proof(leaves, i)) for i in range(size))
        assert longest == (size - 1).bit_length()


@given(st.lists(hex_hashes, min_size=2, max_size=17, unique=True), st.data())
def test_tampered_proofs_fail(leaves: list[str], data: st.DataObject) -> None:
    root = merkle_root(leaves)
    index = data.draw(st.integers(0, len(leaves) - 1))
    proof = inclusion_proof(leaves, index)
    other = (index + 1) % len(leaves)
    assert not verify_proof(leaves[other], proof, root)
    step = data.draw(st.integers(0, len(proof) - 1))
    flipped = ProofStep(proof[step].sibling, not proof[step].sibling_is_left)
    changed = ProofStep("00" * 32 if proof[step].sibling != "00" * 32 else "11" * 32,
                        proof[step].sibling_is_left)
    for bad_step in (flipped, changed):
        bad = (*proof[:step], bad_step, *proof[step + 1 :])
        assert not verify_proof(leaves[index], bad, root)
    assert not verify_proof(leaves[index], proof[:-1], root)


def test_a_proof_with_a_non_hex_sibling_is_rejected_not_raised() -> None:
    assert not verify_proof(A, (ProofStep("zz", False),), merkle_root([A, B]))


def test_inclusion_proof_refuses_an_index_outside_the_tree() -> None:
    with pytest.raises(IndexError):
        inclusion_proof([A], 1)


def test_all_proofs_at_once_are_each_leafs_own_proof() -> None:
    from ledger.merkle import all_inclusion_proofs

    for n in (1, 2, 3, 5, 8, 13):
        leaves = [f"{i:064x}" for i in range(n)]
        assert all_inclusion_proofs(leaves) == [inclusion_proof(leaves, i) for i in range(n)]
