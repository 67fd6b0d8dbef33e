"""Fixtures for the browser tests: they drive a RUNNING lab (`make lab`) with headless Chromium.

Nothing here starts the app. If it is not reachable the tests FAIL (they do not
skip): a browser test that silently skips proves nothing.

Environment:
  CHAINLIT_E2E_URL       the app's URL (default http://127.0.0.1:8502, the lab's published port)
  CHAINLIT_E2E_USER      the login (default admin)
  CHAINLIT_E2E_PASSWORD  the password (default: inventory/lab/.credentials/
                         chainlit-user-admin.password, which `make lab` writes)
  CHAINLIT_E2E_CHROMIUM  the browser binary (default /usr/bin/chromium, Debian's `chromium`)
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS_DIR = ROOT / "artifacts"
DEFAULT_URL = "http://127.0.0.1:8502"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
# Playwright's own browser download does not work on our machines: use Debian's
# chromium, with the flags that keep it quiet and working as root in a container.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass(frozen=True)
class Lab:
    url: str
    user: str
    password: str


def _password() -> str:
    if password := os.environ.get("CHAINLIT_E2E_PASSWORD"):
        return password
    user = os.environ.get("CHAINLIT_E2E_USER", "admin")
    path = ROOT / "inventory" / "lab" / ".credentials" / f"chainlit-user-{user}.password"
    if not path.is_file():
        pytest.fail(
            f"no password for {user!r}: set CHAINLIT_E2E_PASSWORD or run `make lab`, "
            f"which writes {path.relative_to(ROOT)}",
            pytrace=False,
        )
    return path.read_text(encoding="utf-8").strip()


@pytest.fixture(scope="session")
def lab() -> Lab:
    """The running app; fails the test (never skips) when it does not answer."""
    url = os.environ.get("CHAINLIT_E2E_URL", DEFAULT_URL).rstrip("/")
    problem = None
    try:
        with urllib.request.urlopen(f"{url}/project/settings?language=en-US", timeout=10):
            pass
    except urllib.error.HTTPError:
        pass  # Any HTTP answer (401 before login included) means the app is up.
    except (OSError, urllib.error.URLError) as exc:
        problem = exc
    if problem is not None:
        pytest.fail(
            f"the Chainlit app is not reachable at {url} ({problem}). These tests need a running "
            "lab: `make lab` (or set CHAINLIT_E2E_URL to the app's URL).",
            pytrace=False,
        )
    return Lab(url=url, user=os.environ.get("CHAINLIT_E2E_USER", "admin"), password=_password())


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def launch_browser(playwright_instance: Playwright):
    """A factory: each call starts a fresh Chromium process. All are closed at the end."""
    executable = os.environ.get("CHAINLIT_E2E_CHROMIUM", DEFAULT_CHROMIUM)
    if not Path(executable).is_file():
        pytest.fail(
            f"no browser at {executable}: `apt-get install -y chromium` "
            "(scripts/harness installs it) or set CHAINLIT_E2E_CHROMIUM",
            pytrace=False,
        )
    browsers: list[Browser] = []

    def launch() -> Browser:
        browser = playwright_instance.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        browsers.append(browser)
        return browser

    yield launch
    for browser in browsers:
        if browser.is_connected():
            browser.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR
