"""A chat app as the analysis' users wrote it: a password login, a reply."""

import chainlit as cl


@cl.password_auth_callback
def auth(username: str, password: str):
    if (username, password) == ("alice", "wonderland"):
        return cl.User(identifier=username)
    return None


@cl.on_message
async def on_message(message: cl.Message):
    await cl.Message(content=f"You said: {message.content}").send()
