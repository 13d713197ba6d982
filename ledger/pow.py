"""Proof of work over block headers.

A header's hash is the SHA-256 of :func:`broker.messages.signing_payload` (its
canonical JSON without ``sig``). It meets difficulty ``d`` when the hash, read as a
256-bit number, starts with at least ``d`` zero bits. :func:`mine` searches nonces
from 0 upward and returns the first that meets the header's ``difficulty_bits``, so
the same header always mines to the same nonce.

Mining does not re-encode the header for every nonce: canonical JSON sorts its keys,
so the nonce sits between a fixed prefix and a fixed suffix. The prefix is hashed
once and each try hashes only ``str(nonce) + suffix`` on a copy of that state. The
result is byte-for-byte the canonical hash (the tests check it).
"""

from __future__ import annotations

import dataclasses
import hashlib

from broker.messages import BlockHeader, signing_payload
from ledger.errors import MiningError

MAX_NONCE = 2**63
_NONCE_KEY = b'"nonce":'


def header_digest(header: BlockHeader) -> bytes:
    """The raw SHA-256 of the header's signing payload."""
    return hashlib.sha256(signing_payload(header)).digest()


def leading_zero_bits(digest: bytes) -> int:
    """How many zero bits ``digest`` starts with."""
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def meets_difficulty(digest: bytes, difficulty_bits: int) -> bool:
    return leading_zero_bits(digest) >= difficulty_bits


def nonce_template(header: BlockHeader) -> tuple[bytes, bytes]:
    """The canonical payload split around the nonce: ``prefix + str(nonce) + suffix``."""
    payload = signing_payload(dataclasses.replace(header, nonce=0))
    start = payload.index(_NONCE_KEY) + len(_NONCE_KEY)
    if payload.count(_NONCE_KEY) != 1 or payload[start : start + 1] != b"0":
        raise MiningError("cannot find the nonce in the header's canonical form")
    return payload[:start], payload[start + 1 :]


def mine(header: BlockHeader) -> BlockHeader:
    """The header with the smallest nonce meeting its difficulty, and no signature.

    The header's own ``nonce`` and ``sig`` are ignored; sign the result afterwards.
    """
    prefix, suffix = nonce_template(header)
    base = hashlib.sha256(prefix)
    shift = 256 - header.difficulty_bits
    for nonce in range(MAX_NONCE):
        attempt = base.copy()
        attempt.update(b"%d%s" % (nonce, suffix))
        if int.from_bytes(attempt.digest(), "big") >> shift == 0:
            return dataclasses.replace(header, nonce=nonce, sig="")
    raise MiningError(f"no nonce below {MAX_NONCE} meets {header.difficulty_bits} bits")
