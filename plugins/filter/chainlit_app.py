"""Filters of the chainlit_app role: the database URL, password hashes and
the input checks that refuse a deployment which could not persist chats."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit

# asyncpg, which Chainlit's data layer hands DATABASE_URL to, accepts only these.
ASYNCPG_SCHEMES = ("postgresql", "postgres")
# The reference app's hash format (app/chainlit_app_users.py): scrypt$N$r$p$SALT$KEY.
SCRYPT_N, SCRYPT_R, SCRYPT_P, SALT_BYTES, KEY_BYTES = 2**15, 8, 1, 16, 32
# Variables the role writes itself; chainlit_app_env may not set them.
ROLE_OWNED = {
    "DATABASE_URL": "set chainlit_app_database_url, or the chainlit_app_db_* variables",
    "CHAINLIT_AUTH_SECRET": "set chainlit_app_auth_secret, or leave it unset to have one generated",
    "CHAINLIT_USERS": "declare the users in chainlit_app_users",
}


def database_url(user: str, password: str, host: str, port: int, db: str, sslmode: str = "") -> str:
    """A postgresql:// URL with every reserved character percent-encoded."""
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    url = f"postgresql://{credentials}@{host}:{int(port)}/{quote(db, safe='')}"
    return f"{url}?sslmode={quote(sslmode, safe='')}" if sslmode else url


def database_url_parts(url: str) -> dict[str, Any]:
    """Connection parameters of a postgresql:// URL, decoded."""
    parts = urlsplit(url)
    query = dict(item.split("=", 1) for item in parts.query.split("&") if "=" in item)
    return {
        "host": parts.hostname or "",
        "port": parts.port or 5432,
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "db": unquote(parts.path.lstrip("/")),
        "sslmode": unquote(query.get("sslmode", "")),
    }


def password_hash(password: str, salt_seed: str) -> str:
    """scrypt hash in the reference app's format, with a salt derived from
    salt_seed so that an unchanged password gives an unchanged .env."""
    if not password:
        raise ValueError("refusing to hash an empty password")
    salt = hashlib.sha256(salt_seed.encode()).digest()[:SALT_BYTES]
    key = hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        maxmem=256 * 1024 * 1024,
        dklen=KEY_BYTES,
    )

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode().rstrip("=")

    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt)}${b64(key)}"


def input_problems(env: Mapping[str, Any], url: str, auth_secret: str | None) -> list[str]:
    """Every reason this input would deploy an app that cannot persist or
    start, each naming the variable and the fix. Empty when all is well."""
    problems: list[str] = []
    if "CHAINLIT_DATABASE_URL" in env:
        problems.append(
            "chainlit_app_env sets CHAINLIT_DATABASE_URL, which Chainlit never reads: with it "
            "nothing is saved. Remove it; the role writes DATABASE_URL from chainlit_app_db_* "
            "or chainlit_app_database_url."
        )
    problems += [
        f"chainlit_app_env sets {name}, which the role writes itself: {fix}."
        for name, fix in ROLE_OWNED.items()
        if name in env
    ]
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in ASYNCPG_SCHEMES:
        hint = " (the SQLAlchemy form)" if "+" in scheme else ""
        problems.append(
            f"chainlit_app_database_url starts with '{scheme or url[:20]}://'{hint}: "
            "Chainlit's data layer passes it to asyncpg, which accepts only postgresql:// "
            "or postgres://. "
            "Write it as postgresql://user:password@host:port/db."
        )
    if not auth_secret or not str(auth_secret).strip():
        problems.append(
            "chainlit_app_auth_secret is empty: Chainlit cannot start with authentication and no "
            "secret. Leave the variable unset to have one generated once and kept in "
            "chainlit_app_credentials_dir, or set it to the output of `chainlit create-secret`."
        )
    values = {"chainlit_app_auth_secret": str(auth_secret or "")}
    values.update({f"chainlit_app_env['{k}']": str(v) for k, v in env.items()})
    for name, value in values.items():
        if any(c in value for c in "\"'"):
            problems.append(
                f"{name} contains a quote: .env values are written unquoted and Docker "
                "passes quotes through literally, so the app would see them. Remove the quotes."
            )
        if "\n" in value or "\r" in value:
            problems.append(f"{name} contains a line break, which a .env line cannot hold.")
    return problems


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "chainlit_url": database_url,
            "chainlit_url_parts": database_url_parts,
            "chainlit_password_hash": password_hash,
            "chainlit_input_problems": input_problems,
        }
