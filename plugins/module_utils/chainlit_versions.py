"""The Chainlit releases this collection deploys with the official data layer,
read from each release's own code (chainlit/data/__init__.py and
chainlit/data/chainlit_data_layer.py of every wheel on PyPI):

- every 2.x release selects ChainlitDataLayer when DATABASE_URL is set (none
  before 2.0.0, no 2.0 pre-release);
- the lines 2.0 to 2.12 read and write the same tables; 2.7.0 adds
  "Thread"."updatedAt" to what they write, 2.9.5 "Step"."createdAt" to what
  they read; no release adds a table, a StepType label or an ON CONFLICT
  target after 2.0.6;
- some releases cannot persist chats on any schema, or leak secrets: they are
  refused with the reason and the release to use instead.

Pure Python: the lookup on the controller, the modules on the hosts and the
tests import it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# The first and the last release of the supported range (inclusive).
FIRST = (2, 0, 601)
LAST_LINE = (2, 12)
# The latest patch of each supported minor line, the pins the tests use.
LATEST_PATCH = {
    "2.0": "2.0.603",
    "2.1": "2.1.2",
    "2.2": "2.2.1",
    "2.3": "2.3.0",
    "2.4": "2.4.400",
    "2.5": "2.5.5",
    "2.6": "2.6.9",
    "2.7": "2.7.2",
    "2.8": "2.8.5",
    "2.9": "2.9.6",
    "2.10": "2.10.1",
    "2.11": "2.11.1",
    "2.12": "2.12.0",
}
# Releases inside the range that are refused, each with why and what instead.
REFUSED = {
    "2.0.6": "prints every login token to its stdout (the container's log); use 2.0.601 or later",
    "2.7.0": "cannot import its data layer without google-cloud-storage (chainlit#2432); use 2.7.2",
    "2.7.1": "its wheel on PyPI holds no code at all; use 2.7.2",
    "2.7.1.1": "cannot import its data layer without google-cloud-storage; use 2.7.2",
}
# Before this release the data layer saves no element (file, image, text
# attachment) unless a storage provider is configured (S3, GCS, Azure): it
# logs "No cloud storage configured!" and drops the element.
ELEMENTS_WITHOUT_STORAGE_FROM = "2.8.4"
RANGE_TEXT = "2.0.601 to 2.12.x (every minor line 2.0 to 2.12; the latest patch of each is tested)"
PIN = re.compile(
    r"^\s*chainlit\s*(?:\[[^\]]*\])?\s*(==|===|~=|>=|<=|>|<|!=)\s*([0-9][0-9A-Za-z.+-]*)",
    re.IGNORECASE | re.MULTILINE,
)
UNPINNED = re.compile(r"^\s*chainlit\s*(?:\[[^\]]*\])?\s*(?:;.*)?$", re.IGNORECASE | re.MULTILINE)
LOCK_ENTRY = re.compile(r'name\s*=\s*"chainlit"\s*\n\s*version\s*=\s*"([^"]+)"', re.IGNORECASE)


def parse(version: str) -> tuple[int, ...]:
    """(2, 8, 5) of "2.8.5"; pre-releases and local parts are cut off."""
    numbers = []
    for part in re.split(r"[.+-]", version or ""):
        if not part.isdigit():
            break
        numbers.append(int(part))
    return tuple(numbers)


def line(version: str) -> str:
    """The minor line ("2.8") of a release."""
    return ".".join(str(n) for n in parse(version)[:2])


def problem(version: str) -> str:
    """Why this release cannot be deployed ("" when it can)."""
    if not version:
        return "no Chainlit release is pinned"
    numbers = parse(version)
    if version in REFUSED:
        return f"chainlit {version} {REFUSED[version]}"
    if len(numbers) < 3 or numbers < FIRST or numbers[:2] > LAST_LINE:
        return (
            f"chainlit {version} is outside the supported range {RANGE_TEXT}: the schema "
            "migrations and checks of this collection are derived from those releases' data layer"
        )
    return ""


def from_requirements(texts: Iterable[str]) -> tuple[str, str]:
    """The exact Chainlit release the app's requirements (or lock files) pin,
    and "" or why none can be read."""
    found: list[str] = []
    loose = ""
    for text in texts:
        for op, version in PIN.findall(text or ""):
            if op in ("==", "==="):
                found.append(version)
            else:
                loose = f"chainlit{op}{version}"
        found += LOCK_ENTRY.findall(text or "")
        if UNPINNED.search(text or ""):
            loose = loose or "chainlit"
    releases = sorted(set(found))
    if len(releases) > 1:
        return "", f"the app pins several Chainlit releases ({', '.join(releases)})"
    if releases:
        return releases[0], ""
    if loose:
        return "", (
            f"the app asks for {loose}, not one release: pin it (chainlit==X.Y.Z in "
            "requirements.txt) so that the schema and the checks match what the image runs"
        )
    return "", "the app's requirements do not name chainlit"


def at_least(version: str, floor: str) -> bool:
    return parse(version) >= parse(floor)


# Dependencies a release imports but no longer gets from a fresh install:
# (first release, first release without the problem, requirement, why).
# Releases before 2.6 pin asyncer 0.0.7, which imports sniffio; anyio (its
# dependency) stopped installing sniffio, so `import chainlit` fails today
# with "No module named 'sniffio'" unless the app installs it.
MISSING_DEPENDENCIES = [
    ("2.0.0", "2.6.0", "sniffio", "asyncer 0.0.7 imports sniffio, which anyio no longer installs"),
]


def missing_dependencies(version: str, requirements: str) -> list[dict[str, str]]:
    """The requirements ``version`` imports but a fresh install lacks, unless
    the app's ``requirements`` already name them."""
    if not version:
        return []
    found = []
    for first, fixed, name, why in MISSING_DEPENDENCIES:
        named = re.search(rf"^\s*{re.escape(name)}\b", requirements, re.IGNORECASE | re.MULTILINE)
        if at_least(version, first) and not at_least(version, fixed) and not named:
            found.append({"requirement": name, "why": why})
    return found
