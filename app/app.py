"""Reference Chainlit app: password login and a reply that shows the conversation is kept.

There is no language model: the assistant repeats what the user said so far,
so anyone can see that context survives a reload or a "resume" from History.
"""

from __future__ import annotations

import asyncio

import chainlit as cl
from chainlit.types import ThreadDict
from chainlit_users import authenticate, load_users

# Read once at startup: a malformed CHAINLIT_USERS stops the app right away.
USERS = load_users()
HISTORY_KEY = "history"


def describe_history(history: list[str]) -> str:
    """The reply: every message of the conversation so far, oldest first."""
    count = len(history)
    noun = "thing" if count == 1 else "things"
    return f"You said {count} {noun} so far: " + ", ".join(history)


def user_messages(thread: ThreadDict) -> list[str]:
    """The user's messages of a stored thread, in the order they were sent."""
    steps = sorted(thread.get("steps", []), key=lambda step: step.get("start") or "")
    return [
        str(step.get("output") or "")
        for step in steps
        if step.get("type") == "user_message" and step.get("output")
    ]


@cl.password_auth_callback
async def password_login(username: str, password: str) -> cl.User | None:
    # scrypt is deliberately slow: keep it off the event loop.
    if await asyncio.to_thread(authenticate, USERS, username, password):
        return cl.User(identifier=username, metadata={"provider": "credentials"})
    return None


@cl.on_chat_resume
async def resume(thread: ThreadDict) -> None:
    cl.user_session.set(HISTORY_KEY, user_messages(thread))


@cl.on_message
async def reply(message: cl.Message) -> None:
    # No on_chat_start resets the history: a new chat is a new, empty session,
    # and a reset racing with the first message would lose it.
    history: list[str] = cl.user_session.get(HISTORY_KEY) or []
    history.append(message.content)
    cl.user_session.set(HISTORY_KEY, history)
    await cl.Message(content=describe_history(history)).send()
