"""The app's .env as Docker reads it (``docker run --env-file``): one home for
parsing it and for the rules of what a value may hold.

Docker takes each ``KEY=value`` line literally: no quote removal, no escapes,
no variable expansion. A value written ``"postgresql://..."`` reaches the app
with its quotes, which is why the role writes values unquoted and refuses
quotes and line breaks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

QUOTES = "\"'"


def parse(text: str | None) -> dict[str, str]:
    """KEY=value lines as Docker's --env-file reads them: values raw, quotes kept."""
    env: dict[str, str] = {}
    for line in (text or "").splitlines():
        line = line.lstrip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        env[key.strip()] = value
    return env


def from_list(items: Iterable[str] | None) -> dict[str, str]:
    """A container's Config.Env (["KEY=value", ...]) as a dict."""
    return parse("\n".join(items or []))


def is_quoted(value: str) -> bool:
    """Whether the value starts or ends with a quote (which the app would see)."""
    return bool(value) and (value[0] in QUOTES or value[-1] in QUOTES)


def unquote(value: str) -> str:
    """The value without one pair of surrounding quotes: what its author meant."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in QUOTES:
        return value[1:-1]
    return value


def quoted_keys(env: Mapping[str, str]) -> list[str]:
    return sorted(key for key, value in env.items() if is_quoted(value))


def value_problems(name: str, value: str) -> list[str]:
    """Why ``value`` cannot be written as an unquoted .env value, naming ``name``
    (never the value)."""
    problems = []
    if any(c in value for c in QUOTES):
        problems.append(
            f"{name} contains a quote: .env values are written unquoted and Docker passes "
            "quotes through literally, so the app would see them. Remove the quotes."
        )
    if "\n" in value or "\r" in value:
        problems.append(f"{name} contains a line break, which a .env line cannot hold.")
    return problems
