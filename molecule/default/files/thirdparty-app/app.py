"""An app written the way Chainlit's own examples are, not like the reference
app: its own password callback (one demo user), fixed replies that repeat
nothing, a resume that restores nothing, no Dockerfile."""

import os

import chainlit as cl


@cl.password_auth_callback
def auth_callback(username: str, password: str):
    if (username, password) == ("demo", os.environ.get("DEMO_PASSWORD", "")):
        return cl.User(identifier="demo", metadata={"role": "admin", "provider": "credentials"})
    return None


@cl.on_chat_start
async def on_chat_start():
    cl.user_session.set("messages", 0)


@cl.on_chat_resume
async def on_chat_resume(thread):
    pass


@cl.on_message
async def on_message(message: cl.Message):
    await cl.Message(content="Noted.").send()
