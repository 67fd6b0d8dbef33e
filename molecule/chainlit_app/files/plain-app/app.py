"""A minimal Chainlit app with password login, and no asyncpg in its requirements."""

import base64
import hashlib
import hmac
import os

import chainlit as cl


def _users() -> dict[str, str]:
    entries = os.environ.get("CHAINLIT_USERS", "").split(",")
    return dict(entry.split(":", 1) for entry in entries if ":" in entry)


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


@cl.password_auth_callback
def auth(username: str, password: str) -> cl.User | None:
    encoded = _users().get(username)
    if not encoded:
        return None
    _, n, r, p, salt, key = encoded.split("$")
    candidate = hashlib.scrypt(
        password.encode(),
        salt=_unb64(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        maxmem=256 * 1024 * 1024,
        dklen=len(_unb64(key)),
    )
    return cl.User(identifier=username) if hmac.compare_digest(candidate, _unb64(key)) else None


@cl.on_message
async def echo(message: cl.Message) -> None:
    await cl.Message(content=f"plain: {message.content}").send()
