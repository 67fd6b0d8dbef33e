"""The load balancer's certificate checks, on certificates made here with
cryptography: a good pair passes; a foreign key, an expired or not yet valid
certificate, one for another name and PEM that does not parse are each named
with the variable to fix, and the key never shows in a message."""

from __future__ import annotations

import datetime

import pytest
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.tls import tls_problems
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = datetime.datetime(2026, 12, 2, 12, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)


def key_pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def certificate(key, names=("chat.example.com",), start=NOW - DAY, end=NOW + 90 * DAY) -> str:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def key():
    return ec.generate_private_key(ec.SECP256R1())


def test_a_good_pair_for_the_host_has_no_problem(key):
    assert tls_problems(certificate(key), key_pem(key), "chat.example.com", NOW) == []


def test_a_wildcard_covers_one_label_only(key):
    cert = certificate(key, ("*.example.com",))
    assert tls_problems(cert, key_pem(key), "chat.example.com", NOW) == []
    assert tls_problems(cert, key_pem(key), "a.chat.example.com", NOW)


def test_a_key_of_another_certificate_is_named(key):
    other = ec.generate_private_key(ec.SECP256R1())
    problems = tls_problems(certificate(key), key_pem(other), "chat.example.com", NOW)
    assert len(problems) == 1
    assert "loadbalancer_tls_private_key is not the key of" in problems[0]


def test_an_expired_certificate_is_named_with_its_date(key):
    cert = certificate(key, start=NOW - 100 * DAY, end=NOW - DAY)
    (problem,) = tls_problems(cert, key_pem(key), "chat.example.com", NOW)
    assert "loadbalancer_tls_certificate expired on 2026-12-01" in problem


def test_a_certificate_not_yet_valid_is_named(key):
    cert = certificate(key, start=NOW + DAY, end=NOW + 9 * DAY)
    (problem,) = tls_problems(cert, key_pem(key), "chat.example.com", NOW)
    assert "valid only from" in problem


def test_a_certificate_for_another_name_is_named(key):
    (problem,) = tls_problems(certificate(key), key_pem(key), "chat.example.org", NOW)
    assert "is for chat.example.com, not for chat.example.org" in problem


def test_pem_that_does_not_parse_is_named_and_the_key_never_shown(key):
    secret = key_pem(key)
    problems = tls_problems("not a certificate", secret[:-40], "chat.example.com", NOW)
    assert [p.split(" ")[0] for p in problems] == [
        "loadbalancer_tls_certificate",
        "loadbalancer_tls_private_key",
    ]
    body = "".join(secret.splitlines()[1:-1])
    assert not any(body[:20] in p for p in problems)
