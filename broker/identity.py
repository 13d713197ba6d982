"""Ed25519 identities: every device and the coordinator sign what they publish.

Keys travel as lowercase hex of their 32 raw bytes. A signature covers
:func:`broker.messages.signing_payload` of the message.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from broker.messages import Message, signing_payload

M = TypeVar("M", bound=Message)


class Identity:
    """A named key pair that signs messages."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self.name = name
        self._key = private_key
        raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public_key_hex = raw.hex()

    @classmethod
    def generate(cls, name: str) -> Identity:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_hex(cls, name: str, private_hex: str) -> Identity:
        try:
            raw = bytes.fromhex(private_hex)
        except ValueError:
            raise ValueError(f"private key of {name!r} is not hex") from None
        if len(raw) != 32:
            raise ValueError(f"private key of {name!r} must be 32 bytes, got {len(raw)}")
        return cls(name, Ed25519PrivateKey.from_private_bytes(raw))

    @classmethod
    def derived(cls, name: str, seed: int) -> Identity:
        """A key derived from a name and a seed: reproducible testbed identities."""
        raw = hashlib.sha256(f"gridmesh-testbed-key:{seed}:{name}".encode()).digest()
        return cls(name, Ed25519PrivateKey.from_private_bytes(raw))

    def private_hex(self) -> str:
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        return self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()

    def sign_bytes(self, payload: bytes) -> str:
        return self._key.sign(payload).hex()

    def sign(self, msg: M) -> M:
        """Return ``msg`` with its ``sig`` field set."""
        if not msg.SIGNED:
            raise TypeError(f"{msg.TYPE} messages are not signed")
        return dataclasses.replace(msg, sig=self.sign_bytes(signing_payload(msg)))  # type: ignore[call-arg]


class Verifier:
    """Checks signatures against known public keys; parsed keys are cached."""

    def __init__(self) -> None:
        self._keys: dict[str, Ed25519PublicKey] = {}

    def _key(self, public_key_hex: str) -> Ed25519PublicKey | None:
        key = self._keys.get(public_key_hex)
        if key is None:
            try:
                key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
            except ValueError:
                return None
            self._keys[public_key_hex] = key
        return key

    def verify_bytes(self, payload: bytes, sig_hex: str, public_key_hex: str) -> bool:
        key = self._key(public_key_hex)
        if key is None or not sig_hex:
            return False
        try:
            key.verify(bytes.fromhex(sig_hex), payload)
        except (InvalidSignature, ValueError):
            return False
        return True

    def verify(self, msg: Message, public_key_hex: str) -> bool:
        sig = getattr(msg, "sig", "")
        return self.verify_bytes(signing_payload(msg), sig, public_key_hex)
