"""How a client proves who it is to a locked-down broker (``gridmesh deploy broker-config``).

A configuration's ``broker_auth`` section (:class:`BrokerAuth`) names files relative to
the configuration file: a client certificate and key from the community's CA, or a user
name and a file holding its password; ``ca_file`` is the CA the broker's own certificate
must come from. :func:`load_credentials` checks them all before anything starts and
gives :class:`Credentials`, which :class:`broker.bus.Endpoint` carries to the connection.

A password never appears in a message, a log line or a ``repr``: errors name files only.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from broker.message_base import ID
from broker.schema import SchemaError, bounded
from gridmesh.config import ConfigError, load, relative_to

MAX_PASSWORD = 1024


@dataclass(frozen=True)
class BrokerAuth:
    """The ``broker_auth`` section: a certificate (``cert_file``, ``key_file``) or a user
    name with ``password_file``; ``ca_file`` for TLS (needed with a certificate)."""

    username: str = bounded("", pattern=f"({ID})?")
    password_file: str = bounded("", max_len=4096)
    ca_file: str = bounded("", max_len=4096)
    cert_file: str = bounded("", max_len=4096)
    key_file: str = bounded("", max_len=4096)

    def __post_init__(self) -> None:
        if bool(self.username) != bool(self.password_file):
            missing = "password_file" if self.username else "username"
            raise SchemaError(missing, "missing: username and password_file go together")
        if bool(self.cert_file) != bool(self.key_file):
            raise SchemaError("key_file" if self.cert_file else "cert_file",
                              "missing: cert_file and key_file go together")
        if self.cert_file and not self.ca_file:
            raise SchemaError("ca_file", "missing: a client certificate needs the broker's CA")
        if not self.username and not self.cert_file:
            raise SchemaError("", "give username and password_file, or cert_file and key_file")


@dataclass(frozen=True)
class AuthFile:
    """A file holding just a ``broker_auth`` section (``--broker-auth FILE``)."""

    broker_auth: BrokerAuth


@dataclass(frozen=True)
class Credentials:
    """What a client presents; TLS when ``ca_file`` is set."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def tls_context(self) -> ssl.SSLContext | None:
        if self.ca_file is None:
            return None
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert_file is not None:
            context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context


def client_arguments(credentials: Credentials | None) -> dict[str, Any]:
    """Keyword arguments for ``aiomqtt.Client``: user name, password, TLS context."""
    if credentials is None:
        return {}
    arguments: dict[str, Any] = {}
    if credentials.username is not None:
        arguments.update(username=credentials.username, password=credentials.password)
    context = credentials.tls_context()
    if context is not None:
        arguments["tls_context"] = context
    return arguments


def load_credentials(config_path: Path, auth: BrokerAuth, key_path: str,
                     principal: str | None = None) -> Credentials:
    """Resolve and check ``auth`` from ``config_path``; ConfigError names the key
    (``key_path`` is the section's, e.g. ``agent.broker_auth``), never a secret.
    ``principal``: who the credentials must name (the broker's ACL knows the client by
    its user name or its certificate's CN, so a mismatch would silently lose its messages)."""
    source = str(config_path)

    def path_of(name: str) -> Path | None:
        value = getattr(auth, name)
        if not value:
            return None
        path = relative_to(config_path, value)
        if not path.is_file():
            raise ConfigError(source, f"{key_path}.{name}", f"{path} is not a file")
        return path

    password = None
    password_path = path_of("password_file")
    if password_path is not None:
        try:
            password = password_path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(source, f"{key_path}.password_file",
                              f"cannot read {password_path}: {type(exc).__name__}") from None
        if not password or len(password) > MAX_PASSWORD or "\n" in password:
            raise ConfigError(source, f"{key_path}.password_file",
                              f"{password_path} must hold one password on one line")
    credentials = Credentials(auth.username or None, password, path_of("ca_file"),
                              path_of("cert_file"), path_of("key_file"))
    if credentials.ca_file is not None:
        _check_tls(credentials, source, key_path)
    if principal is not None:
        _check_principal(credentials, principal, source, key_path)
    return credentials


def _check_principal(credentials: Credentials, principal: str, source: str, key_path: str) -> None:
    if credentials.username is not None and credentials.username != principal:
        raise ConfigError(source, f"{key_path}.username",
                          f"{credentials.username!r} is not {principal!r}, whom this file runs")
    if credentials.cert_file is not None:
        cert = x509.load_pem_x509_certificate(credentials.cert_file.read_bytes())
        names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if names != [principal]:
            raise ConfigError(source, f"{key_path}.cert_file",
                              f"{credentials.cert_file} is issued to {', '.join(names) or 'nobody'}, "
                              f"not {principal!r}, whom this file runs")


def _check_tls(credentials: Credentials, source: str, key_path: str) -> None:
    """ConfigError naming the file TLS cannot use."""
    try:
        context = ssl.create_default_context(cafile=str(credentials.ca_file))
    except ssl.SSLError as exc:
        raise ConfigError(source, f"{key_path}.ca_file",
                          f"{credentials.ca_file} is not a PEM certificate ({exc.reason})") from None
    if credentials.cert_file is None:
        return
    try:
        context.load_cert_chain(str(credentials.cert_file), str(credentials.key_file))
    except ssl.SSLError as exc:
        raise ConfigError(source, f"{key_path}.cert_file",
                          f"{credentials.cert_file} with key_file {credentials.key_file}: "
                          f"not a certificate and its key ({exc.reason})") from None


def load_auth_file(path: Path, principal: str | None = None) -> Credentials:
    """The credentials in a file holding a ``broker_auth`` section (paths relative to it),
    as ``gridmesh deploy broker-config`` writes one per principal; ``principal`` as for
    :func:`load_credentials`."""
    return load_credentials(path, load(AuthFile, path).broker_auth, "broker_auth", principal)
