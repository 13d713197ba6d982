"""Per-principal passwords and mosquitto 2's password file.

A line is ``user:$7$ITERATIONS$SALT$HASH``: PBKDF2-HMAC-SHA512 over the password with
a 12-byte salt, salt and 64-byte hash in standard base64, as ``mosquitto_passwd``
writes it (``-H sha512-pbkdf2``, its default). The passwords are random 192-bit tokens,
so the hash's strength does not rest on the iteration count; 101 is mosquitto 2.0's own.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

ITERATIONS = 101
SALT_BYTES = 12


def new_password() -> str:
    """A random password: 32 URL-safe characters (192 bits)."""
    return secrets.token_urlsafe(24)


def mosquitto_hash(password: str, salt: bytes, iterations: int = ITERATIONS) -> str:
    """The ``$7$...`` field mosquitto stores for ``password``."""
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def password_line(user: str, password: str, salt: bytes | None = None) -> str:
    """One line of a mosquitto password file (a fresh random salt unless given)."""
    if ":" in user:
        raise ValueError(f"user {user!r} must not contain ':'")
    return f"{user}:{mosquitto_hash(password, salt or secrets.token_bytes(SALT_BYTES))}"


def check_password(line: str, password: str) -> bool:
    """Whether ``password`` matches the ``$7$`` line (what the broker checks)."""
    _user, _, stored = line.partition(":")
    fields = stored.split("$")
    if len(fields) != 5 or fields[1] != "7" or not fields[2].isdigit():
        raise ValueError("not a mosquitto $7$ (PBKDF2-SHA512) password line")
    salt = base64.b64decode(fields[3])
    return secrets.compare_digest(mosquitto_hash(password, salt, int(fields[2])), stored)
