"""Merkle trees over transaction hashes, and inclusion proofs a device can check.

Leaves and inner nodes are hashed with different one-byte prefixes (``0x00`` for a
leaf, ``0x01`` for a node, as in RFC 6962), so a node can never pass for a leaf. A
level with an odd number of nodes promotes its last node unchanged to the next
level; it is never paired with itself, so two different lists of leaves cannot
share a root by repeating the last one. The root of no leaves is ``sha256(b"")``.

Leaves are given as hex strings (transaction hashes); their raw bytes are hashed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class ProofStep:
    """One step up the tree: the sibling's hash and on which side it sits."""

    sibling: str
    sibling_is_left: bool


def leaf_hash(leaf: str) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + bytes.fromhex(leaf)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _next_level(level: list[bytes]) -> list[bytes]:
    paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        paired.append(level[-1])
    return paired


def merkle_root(leaves: Sequence[str]) -> str:
    """The hex root of the tree over ``leaves`` (hex strings)."""
    if not leaves:
        return EMPTY_ROOT
    level = [leaf_hash(leaf) for leaf in leaves]
    while len(level) > 1:
        level = _next_level(level)
    return level[0].hex()


def inclusion_proof(leaves: Sequence[str], index: int) -> tuple[ProofStep, ...]:
    """The siblings needed to recompute the root from ``leaves[index]``, bottom up."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf index {index} outside a tree of {len(leaves)} leaves")
    steps: list[ProofStep] = []
    level = [leaf_hash(leaf) for leaf in leaves]
    position = index
    while len(level) > 1:
        sibling = position ^ 1
        if sibling < len(level):
            steps.append(ProofStep(level[sibling].hex(), sibling_is_left=sibling < position))
        level = _next_level(level)
        position //= 2
    return tuple(steps)


def all_inclusion_proofs(leaves: Sequence[str]) -> list[tuple[ProofStep, ...]]:
    """Every leaf's proof, from one pass over the tree (what :func:`inclusion_proof` gives
    for each index, without rebuilding the tree per leaf)."""
    levels = [[leaf_hash(leaf) for leaf in leaves]]
    while len(levels[-1]) > 1:
        levels.append(_next_level(levels[-1]))
    proofs = []
    for index in range(len(leaves)):
        steps: list[ProofStep] = []
        position = index
        for level in levels[:-1]:
            sibling = position ^ 1
            if sibling < len(level):
                steps.append(ProofStep(level[sibling].hex(), sibling_is_left=sibling < position))
            position //= 2
        proofs.append(tuple(steps))
    return proofs


def verify_proof(leaf: str, proof: Sequence[ProofStep], root: str) -> bool:
    """Whether ``leaf`` with ``proof`` leads to ``root``."""
    try:
        current = leaf_hash(leaf)
        for step in proof:
            sibling = bytes.fromhex(step.sibling)
            current = node_hash(sibling, current) if step.sibling_is_left else node_hash(current, sibling)
    except ValueError:
        return False
    return current.hex() == root
