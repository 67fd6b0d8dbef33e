"""The load balancer's certificate and key, checked on the controller before
any host changes: PEM that parses, a key that belongs to the certificate, a
certificate valid now and naming the public host. Each problem is one
sentence that names the variable and the fix; the key's content never
appears in one."""

from __future__ import annotations

import datetime
import ipaddress
from typing import Any

CERT_VAR = "loadbalancer_tls_certificate"
KEY_VAR = "loadbalancer_tls_private_key"


def _load(cert_pem: str, key_pem: str, cert_var: str, key_var: str) -> tuple[Any, Any, list[str]]:
    # Imported here: the controller has cryptography (ansible-core needs it),
    # and nothing else in the collection does.
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    problems: list[str] = []
    cert = key = None
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
    except ValueError:
        problems.append(
            f"{cert_var} is not a PEM certificate (-----BEGIN CERTIFICATE-----): give the "
            "server's certificate, its chain after it."
        )
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError):
        problems.append(
            f"{key_var} is not an unencrypted PEM private key: give the key without its "
            "passphrase (openssl pkey -in KEY -out PLAIN), kept in the vault."
        )
    return cert, key, problems


def _names(cert: Any) -> list[str]:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
        names += [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    if not names:
        names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return names


def _matches(name: str, host: str) -> bool:
    name, host = name.lower().rstrip("."), host.lower().rstrip(".")
    try:
        return ipaddress.ip_address(name) == ipaddress.ip_address(host)
    except ValueError:
        pass
    if name.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == name[2:]
    return name == host


def tls_problems(
    cert_pem: str,
    key_pem: str,
    host: str = "",
    now: datetime.datetime | None = None,
    cert_var: str = CERT_VAR,
    key_var: str = KEY_VAR,
) -> list[str]:
    """What is wrong with the pair, for ``host`` (the public URL's host; no
    name check when empty) at ``now`` (UTC, default the present); the
    sentences name the variables ``cert_var`` and ``key_var``."""
    cert, key, problems = _load(cert_pem, key_pem, cert_var, key_var)
    if cert is None or key is None:
        return problems
    from cryptography.hazmat.primitives import serialization

    public = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(*public) != key.public_key().public_bytes(*public):
        problems.append(
            f"{key_var} is not the key of {cert_var} (their public keys differ): give the key "
            "the certificate was issued for."
        )
    now = now or datetime.datetime.now(datetime.UTC)
    not_after = cert.not_valid_after_utc
    not_before = cert.not_valid_before_utc
    if not_after <= now:
        problems.append(
            f"{cert_var} expired on {not_after:%Y-%m-%d %H:%M} UTC: renew it, then give the new "
            "certificate."
        )
    elif not_before > now:
        problems.append(
            f"{cert_var} is valid only from {not_before:%Y-%m-%d %H:%M} UTC: check the clock of "
            "the machine that issued it, or wait."
        )
    names = _names(cert)
    if host and not any(_matches(n, host) for n in names):
        problems.append(
            f"{cert_var} is for {', '.join(names) or 'no name'}, not for {host} (the host of "
            "loadbalancer_public_url): give a certificate for that name, or correct the URL."
        )
    return problems
