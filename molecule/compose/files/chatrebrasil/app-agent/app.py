"""A chat app as the analysis' users wrote it: a password login, a reply."""

import chainlit as cl

USERS = {"alice": "wonderland", "bob": "builder"}


@cl.password_auth_callback
def auth(username: str, password: str):
    if USERS.get(username) == password:
        return cl.User(identifier=username)
    return None


@cl.on_message
async def on_message(message: cl.Message):
    await cl.Message(content=f"You said: {message.content}").send()


@cl.on_chat_resume
async def on_chat_resume(thread):
    """History: a chat picked up where it was left."""
