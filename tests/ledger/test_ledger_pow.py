"""Proof of work: mined headers meet their difficulty, and the fast path hashes canonically."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from broker.messages import BlockHeader, signing_payload
from ledger.pow import header_digest, leading_zero_bits, meets_difficulty, mine, nonce_template


def header(**changes: Any) -> BlockHeader:
    base = BlockHeader(
        height=7, prev_hash="ab" * 32, merkle_root="cd" * 32, slot=1_888_000,
        t_s=1_699_200_000, difficulty_bits=8, nonce=0, tx_count=3,
    )
    return dataclasses.replace(base, **changes)


def test_leading_zero_bits() -> None:
    assert leading_zero_bits(b"\x00" * 32) == 256
    assert leading_zero_bits(b"\x80" + b"\x00" * 31) == 0
    assert leading_zero_bits(b"\x00\x01" + b"\xff" * 30) == 15
    assert leading_zero_bits(b"\x0f" + b"\xff" * 31) == 4
    assert meets_difficulty(b"\x0f" + b"\xff" * 31, 4)
    assert not meets_difficulty(b"\x0f" + b"\xff" * 31, 5)


def test_mined_header_meets_its_difficulty() -> None:
    for bits in (0, 4, 8, 10):
        mined = mine(header(difficulty_bits=bits))
        assert leading_zero_bits(header_digest(mined)) >= bits


def test_mining_finds_the_smallest_nonce() -> None:
    mined = mine(header(difficulty_bits=8))
    for nonce in range(mined.nonce):
        assert leading_zero_bits(header_digest(header(nonce=nonce))) < 8


def test_mining_is_deterministic_and_ignores_the_starting_nonce_and_signature() -> None:
    first = mine(header())
    again = mine(header(nonce=first.nonce + 5, sig="ee" * 64))
    assert first == again
    assert first.sig == ""


def test_difficulty_zero_takes_nonce_zero() -> None:
    assert mine(header(difficulty_bits=0)).nonce == 0


@given(
    nonce=st.integers(0, 2**63),
    height=st.integers(0, 2**40),
    slot=st.integers(-1, 2**40),
    tx_count=st.integers(0, 10_000),
    bits=st.integers(0, 64),
)
def test_fast_path_payload_equals_the_canonical_payload(
    nonce: int, height: int, slot: int, tx_count: int, bits: int
) -> None:
    h = header(height=height, slot=slot, tx_count=tx_count, difficulty_bits=bits)
    prefix, suffix = nonce_template(h)
    fast = prefix + str(nonce).encode() + suffix
    canonical = signing_payload(dataclasses.replace(h, nonce=nonce))
    assert fast == canonical
    base = hashlib.sha256(prefix)
    attempt = base.copy()
    attempt.update(b"%d%s" % (nonce, suffix))
    assert attempt.digest() == header_digest(dataclasses.replace(h, nonce=nonce))
