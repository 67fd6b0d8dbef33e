"""Password hashes and the user table of the reference app, standard library only.

A hash reads ``scrypt$N$r$p$SALT$KEY``: the scrypt cost parameters in decimal,
then the salt and the derived key in standard base64 without padding. The
alphabet of base64 never contains ``$``, ``:`` or ``,``, which keeps hashes
safe inside ``CHAINLIT_USERS`` (``name:hash,name:hash``).

Make a hash (the password is read from the terminal, or from stdin when piped)::

    python app/chainlit_users.py
    printf '%s' "$PASSWORD" | python app/chainlit_users.py

The Ansible role imports this module on the controller to make the same format.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import hmac
import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SCHEME = "scrypt"
# 32 MiB of memory and a few tens of milliseconds per check on a current core.
DEFAULT_N = 2**15
DEFAULT_R = 8
DEFAULT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
# Refuse parameters that would let a crafted hash exhaust the server.
MAX_N = 2**20
MAX_R = 32
MAX_P = 16

USERS_VAR = "CHAINLIT_USERS"
USERS_FILE_VAR = "CHAINLIT_USERS_FILE"


class HashFormatError(ValueError):
    """A stored password hash is not in the ``scrypt$N$r$p$SALT$KEY`` format."""


@dataclass(frozen=True)
class ScryptHash:
    n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    def __str__(self) -> str:
        return "$".join(
            (SCHEME, str(self.n), str(self.r), str(self.p), _b64(self.salt), _b64(self.key))
        )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HashFormatError(f"invalid base64 field {text!r}") from exc


def _derive(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    # hashlib's default maxmem (32 MiB) is below what N=2**15, r=8 needs.
    maxmem = 128 * r * (n + p + 2) + 2**20
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=length
    )


def parse_hash(encoded: str) -> ScryptHash:
    """Split a stored hash into its fields, refusing anything malformed or unsafe."""
    fields = encoded.strip().split("$")
    if len(fields) != 6 or fields[0] != SCHEME:
        raise HashFormatError("expected scrypt$N$r$p$SALT$KEY")
    try:
        n, r, p = (int(field) for field in fields[1:4])
    except ValueError as exc:
        raise HashFormatError("N, r and p must be decimal integers") from exc
    if n < 2 or n & (n - 1) or n > MAX_N:
        raise HashFormatError(f"N must be a power of two between 2 and {MAX_N}")
    if not (1 <= r <= MAX_R and 1 <= p <= MAX_P):
        raise HashFormatError(f"r must be 1..{MAX_R} and p 1..{MAX_P}")
    salt, key = _unb64(fields[4]), _unb64(fields[5])
    if len(salt) < 8 or len(key) < 16:
        raise HashFormatError("salt or key too short")
    return ScryptHash(n=n, r=r, p=p, salt=salt, key=key)


def hash_password(
    password: str, *, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P
) -> str:
    """Return a new salted scrypt hash of ``password``."""
    if not password:
        raise ValueError("refusing to hash an empty password")
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, n, r, p, KEY_BYTES)
    encoded = str(ScryptHash(n=n, r=r, p=p, salt=salt, key=key))
    parse_hash(encoded)  # the parameters given must be ones we accept back
    return encoded


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded``; raises HashFormatError on a bad hash."""
    stored = parse_hash(encoded)
    candidate = _derive(password, stored.salt, stored.n, stored.r, stored.p, len(stored.key))
    return hmac.compare_digest(candidate, stored.key)


def parse_users(text: str) -> dict[str, str]:
    """Parse ``name:hash`` entries separated by commas or newlines into {name: hash}.

    Every hash is checked, so a typo fails at startup instead of at login.
    """
    users: dict[str, str] = {}
    for raw in text.replace("\n", ",").split(","):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        name, sep, encoded = entry.partition(":")
        name, encoded = name.strip(), encoded.strip()
        if not sep or not name or not encoded:
            raise ValueError(f"user entry {entry.split(':')[0]!r} is not NAME:HASH")
        if name in users:
            raise ValueError(f"user {name!r} is listed twice")
        try:
            parse_hash(encoded)
        except HashFormatError as exc:
            raise ValueError(f"user {name!r}: bad password hash: {exc}") from exc
        users[name] = encoded
    return users


def load_users(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Users from ``CHAINLIT_USERS`` and/or the file named by ``CHAINLIT_USERS_FILE``."""
    text = environ.get(USERS_VAR, "")
    if path := environ.get(USERS_FILE_VAR):
        text = f"{text}\n{Path(path).read_text(encoding='utf-8')}"
    return parse_users(text)


# Verified against when the user name is unknown, so that the answer takes as
# long as for a known name with a wrong password.
_DUMMY_HASH = str(
    ScryptHash(n=DEFAULT_N, r=DEFAULT_R, p=DEFAULT_P, salt=bytes(SALT_BYTES), key=bytes(KEY_BYTES))
)


def authenticate(users: Mapping[str, str], username: str, password: str) -> bool:
    """True when ``username`` exists in ``users`` and ``password`` matches its hash."""
    encoded = users.get(username)
    matched = verify_password(password, encoded or _DUMMY_HASH)
    return encoded is not None and matched


def main() -> int:
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.read().rstrip("\r\n")
    if not password:
        print("empty password refused", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


if __name__ == "__main__":
    sys.exit(main())
