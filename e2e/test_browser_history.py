"""The user's manual check of persistence, in a real browser.

Log in, send three messages, close the browser. Open a NEW browser (a new
context: no cookies, no local storage), log in again: the History sidebar lists
the chat; open it: the old messages are there; send a fourth: the reference app
(app/app.py) answers "You said 4 things so far: a, b, c, d", so the context
survived. Needs a running lab (`make lab`); see conftest.py for the settings.

Artifacts (in artifacts/, git-ignored): browser-history.png, the reopened chat
with the History sidebar; browser-history-resumed.png, the reply to the fourth
message; browser-history-failure.png, the page at the step that failed.
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, expect

from .conftest import Lab

# Writes to the data layer are background tasks: give them time, but bounded.
HISTORY_TIMEOUT_S = 30
REPLY_TIMEOUT_MS = 30_000
PAGE_TIMEOUT_MS = 30_000
DISCONNECT_GRACE_S = 2

USER_STEP = '[data-step-type="user_message"]'
ASSISTANT_STEP = '[data-step-type="assistant_message"]'
HISTORY_ITEM = '#thread-history li[id^="thread-"]'
ERROR_TOAST = 'li[data-type="error"]'
ARTIFACTS = ("browser-history.png", "browser-history-resumed.png", "browser-history-failure.png")


def reply_for(messages: list[str]) -> str:
    """What app/app.py answers after these messages (mirrors describe_history)."""
    noun = "thing" if len(messages) == 1 else "things"
    return f"You said {len(messages)} {noun} so far: " + ", ".join(messages)


def new_page(browser: Browser) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    return context, context.new_page()


def log_in(page: Page, lab: Lab) -> None:
    page.goto(f"{lab.url}/login")
    page.locator("#email").fill(lab.user)
    page.locator("#password").fill(lab.password)
    page.locator('button[type="submit"]').click()
    expect(
        page.locator("#chat-input"), f"login as {lab.user!r} did not reach the chat"
    ).to_be_visible(timeout=PAGE_TIMEOUT_MS)


def send(page: Page, text: str, expected_reply: str) -> None:
    composer = page.locator("#chat-input")
    composer.click()
    composer.fill(text)
    # The composer ignores Enter until the socket is connected and the previous
    # reply is done; that shows as a disabled send button. Wait for it.
    submit = page.locator("#chat-submit")
    expect(submit, f"the send button stayed disabled with {text!r} typed").to_be_enabled()
    submit.click()
    expect(
        page.locator(ASSISTANT_STEP).filter(has_text=expected_reply),
        f"no reply {expected_reply!r} after sending {text!r}",
    ).to_be_visible(timeout=REPLY_TIMEOUT_MS)


def wait_for_history_item(page: Page, name: str) -> str:
    """Wait (reloading, since the sidebar loads once) for the chat in History; return its id."""
    item = page.locator(HISTORY_ITEM).filter(has_text=name)
    deadline = time.monotonic() + HISTORY_TIMEOUT_S
    while True:
        try:
            expect(item).to_have_count(1, timeout=5_000)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                listed = page.locator(HISTORY_ITEM).all_inner_texts()
                sidebar = " ".join(page.locator("#thread-history").all_inner_texts()).strip()
                errors = page.locator(ERROR_TOAST).all_inner_texts()
                raise AssertionError(
                    f"after logging in again, the History sidebar did not list the chat "
                    f"{name!r} within {HISTORY_TIMEOUT_S} s: the conversation was not persisted "
                    f"or cannot be read back (sidebar items: {listed!r}; sidebar text: "
                    f"{sidebar!r}; error toasts: {errors!r})"
                ) from None
            page.reload()
            expect(page.locator("#chat-input")).to_be_visible()
    item_id = item.get_attribute("id") or ""
    return item_id.removeprefix("thread-")


@contextmanager
def screenshot_on_failure(page_holder: dict[str, Page], path: Path) -> Iterator[None]:
    try:
        yield
    except Exception:
        page = page_holder.get("page")
        if page is not None and not page.is_closed():
            page.screenshot(path=path, full_page=True)
        raise


def delete_thread(context: BrowserContext, page: Page, lab: Lab, thread_id: str) -> None:
    """Remove the test's chat (DELETE /project/thread with the session cookie): best effort.

    Close the page first: on disconnect Chainlit writes the session's metadata to
    its thread, and that upsert would re-create a deleted thread as an orphan row.
    """
    if not page.is_closed():
        page.close()
    time.sleep(DISCONNECT_GRACE_S)
    response = context.request.delete(f"{lab.url}/project/thread", data={"threadId": thread_id})
    if not response.ok:
        warnings.warn(
            f"could not delete test thread {thread_id}: HTTP {response.status}", stacklevel=1
        )


def test_chat_survives_a_new_browser_and_resumes_with_context(
    lab: Lab, launch_browser, artifacts_dir: Path
) -> None:
    tag = f"e2e-{uuid.uuid4().hex[:8]}"
    messages = [f"{tag} first", f"{tag} second", f"{tag} third"]
    holder: dict[str, Page] = {}
    for name in ARTIFACTS:  # No stale screenshot from an earlier run.
        (artifacts_dir / name).unlink(missing_ok=True)
    failure_png = artifacts_dir / "browser-history-failure.png"

    # First browser: log in and chat.
    browser = launch_browser()
    context, page = new_page(browser)
    holder["page"] = page
    with screenshot_on_failure(holder, failure_png):
        log_in(page, lab)
        for count in range(1, len(messages) + 1):
            send(page, messages[count - 1], reply_for(messages[:count]))
    context.close()
    browser.close()

    # A NEW browser: nothing carried over but what the server stored.
    browser = launch_browser()
    context, page = new_page(browser)
    holder["page"] = page
    assert context.cookies() == []
    thread_id = ""
    try:
        with screenshot_on_failure(holder, failure_png):
            log_in(page, lab)
            thread_id = wait_for_history_item(page, messages[0])

            page.locator(f"#thread-{thread_id} a").first.click()
            expect(page).to_have_url(f"{lab.url}/thread/{thread_id}")
            for text in messages:
                expect(
                    page.locator(USER_STEP).filter(has_text=text),
                    f"the reopened chat does not show the old message {text!r}",
                ).to_be_visible()
            expect(
                page.locator(ASSISTANT_STEP).filter(has_text=reply_for(messages)),
                "the reopened chat does not show the old reply",
            ).to_be_visible()
            page.locator(USER_STEP).filter(has_text=messages[0]).scroll_into_view_if_needed()
            page.screenshot(path=artifacts_dir / "browser-history.png")

            messages.append(f"{tag} fourth")
            send(page, messages[-1], reply_for(messages))
            page.screenshot(path=artifacts_dir / "browser-history-resumed.png")
    finally:
        if thread_id:
            delete_thread(context, page, lab, thread_id)
        context.close()
        browser.close()
