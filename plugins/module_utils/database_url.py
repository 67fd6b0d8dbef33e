"""The rules of Chainlit's DATABASE_URL, in one place: build, parse, mask, the
schemes asyncpg accepts, and the container's name for the Docker host.

Chainlit's official data layer hands DATABASE_URL to asyncpg, which reads it
with ``urllib.parse`` and splits the user and password at the first ``@``: a
password with an unencoded ``@``, ``/``, ``#`` or ``?`` silently connects to
the wrong host (or to none). Everything here is pure Python (controller-side
plugins, modules on the host and unit tests import it) and no message it
makes contains any part of a password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

# asyncpg accepts only these schemes.
ASYNCPG_SCHEMES = ("postgresql", "postgres")
# Docker's host gateway as the app's container names it (--add-host
# host.docker.internal:host-gateway); the host itself reaches the same server
# on its loopback.
CONTAINER_HOST_ALIAS = "host.docker.internal"
HOST_LOOPBACK = "127.0.0.1"
# Names that mean "this machine": inside a container, the container itself.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})
# Characters that must be percent-encoded in the user or password.
RESERVED_IN_CREDENTIALS = "@/#?[]"
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# A URL in free text (a log line): the password runs to the last "@" of the word.
URL_IN_TEXT = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)\S*@", re.IGNORECASE)


@dataclass(frozen=True)
class DatabaseUrl:
    """A database URL read the way it was meant (credentials up to the last ``@``)."""

    scheme: str = ""
    user: str = ""
    password: str = ""
    host: str = ""
    port: int = 5432
    database: str = ""
    params: dict[str, str] = field(default_factory=dict)
    # Problems, each a (code, message) pair; messages never quote the password.
    problems: tuple[tuple[str, str], ...] = ()

    @property
    def sslmode(self) -> str:
        return self.params.get("sslmode", "")

    @property
    def ok(self) -> bool:
        return not self.problems

    def codes(self) -> list[str]:
        return [code for code, _ in self.problems]

    def as_dict(self) -> dict[str, object]:
        """The connection parameters (password included: no_log wherever it goes)."""
        return {
            "scheme": self.scheme,
            "user": self.user,
            "password": self.password,
            "host": self.host,
            "port": self.port,
            "db": self.database,
            "sslmode": self.sslmode,
            "problems": [{"code": c, "message": m} for c, m in self.problems],
        }


def build(user: str, password: str, host: str, port: int, db: str, sslmode: str = "") -> str:
    """A postgresql:// URL with every reserved character percent-encoded."""
    credentials = f"{quote(str(user), safe='')}:{quote(str(password), safe='')}"
    netloc_host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    url = f"postgresql://{credentials}@{netloc_host}:{int(port)}/{quote(str(db), safe='')}"
    return f"{url}?sslmode={quote(sslmode, safe='')}" if sslmode else url


def scheme_of(url: str) -> str:
    """The URL's scheme when it has a well-formed one, else "" (never a part of a secret)."""
    head, sep, _ = (url or "").partition("://")
    return head if sep and SCHEME.match(head) else ""


def parse(url: str) -> DatabaseUrl:
    """Read ``url`` as its author meant it and list what asyncpg would get wrong."""
    url = (url or "").strip()
    problems: list[tuple[str, str]] = []
    if not url:
        return DatabaseUrl(problems=(("empty", "the database URL is empty"),))
    scheme = scheme_of(url)
    if not scheme:
        return DatabaseUrl(
            problems=(
                (
                    "no_scheme",
                    "the database URL does not start with postgresql:// "
                    "(asyncpg, which Chainlit's data layer hands it to, needs that form: "
                    "postgresql://user:password@host:port/db)",
                ),
            )
        )
    if scheme.lower() not in ASYNCPG_SCHEMES:
        hint = " (the SQLAlchemy form)" if "+" in scheme else ""
        problems.append(
            (
                "scheme",
                f"the database URL starts with {scheme}://{hint}: Chainlit's data layer hands "
                "it to asyncpg, which accepts only postgresql:// or postgres://",
            )
        )
    rest = url.split("://", 1)[1]
    # The authority ends at the first "/" or "?" after the credentials, which
    # themselves end at the last "@" (an unencoded "@" may sit in the password).
    at = rest.rfind("@", 0, _end_of_authority(rest))
    userinfo, hostpart = (rest[:at], rest[at + 1 :]) if at >= 0 else ("", rest)
    raw_user, _, raw_password = userinfo.partition(":")
    for name, raw in (("user", raw_user), ("password", raw_password)):
        reserved = sorted({c for c in raw if c in RESERVED_IN_CREDENTIALS})
        if reserved or BAD_ESCAPE.search(raw):
            shown = " ".join(reserved) + (" %" if BAD_ESCAPE.search(raw) else "")
            problems.append(
                (
                    "unencoded",
                    f"the {name} in the database URL holds unencoded reserved characters "
                    f"({shown.strip()}): asyncpg splits the URL there and connects to the "
                    "wrong host or database. Percent-encode them (@ is %40, / is %2F, "
                    "# is %23, ? is %3F, % is %25), or let the role build the URL from "
                    "chainlit_app_db_* variables",
                )
            )
    hostport, path, query = _split_host_part(hostpart.split("#", 1)[0])
    host, port, port_problem = _host_port(hostport)
    if port_problem:
        problems.append(("port", port_problem))
    if not host:
        problems.append(("no_host", "the database URL names no host"))
    database = unquote(path)
    if not database:
        problems.append(("no_database", "the database URL names no database"))
    params = {}
    for item in query.split("&"):
        if "=" in item:
            key, value = item.split("=", 1)
            params[unquote(key)] = unquote(value)
    return DatabaseUrl(
        scheme=scheme,
        user=unquote(raw_user),
        password=unquote(raw_password),
        host=host,
        port=port,
        database=database,
        params=params,
        problems=tuple(problems),
    )


def _end_of_authority(rest: str) -> int:
    """Index where the host part ends: the first "/" or "?" after the last "@"
    (or after the start, without credentials)."""
    last_at = rest.rfind("@")
    start = last_at + 1 if last_at >= 0 else 0
    ends = [i for i in (rest.find("/", start), rest.find("?", start)) if i >= 0]
    return min(ends) if ends else len(rest)


def _split_host_part(hostpart: str) -> tuple[str, str, str]:
    """host[:port], database and query of what follows the credentials."""
    ends = [i for i in (hostpart.find("/"), hostpart.find("?")) if i >= 0]
    cut = min(ends) if ends else len(hostpart)
    hostport, remainder = hostpart[:cut], hostpart[cut:]
    path, _, query = remainder.partition("?")
    return hostport, path[1:] if path.startswith("/") else path, query


def _host_port(hostport: str) -> tuple[str, int, str]:
    if hostport.startswith("["):
        host, _, after = hostport[1:].partition("]")
        port_text = after[1:] if after.startswith(":") else ""
    else:
        host, _, port_text = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
    host = unquote(host)
    if not port_text:
        return host, 5432, ""
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return host, 5432, "the port in the database URL is not a number from 1 to 65535"
    return host, int(port_text), ""


def mask(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    return URL_IN_TEXT.sub(r"\1***@", text or "")


def host_side(host: str, login_host: str = "") -> str:
    """The database host as the Docker host reaches it: ``login_host`` when given,
    else the URL's host with the container's name for the Docker host read as
    the loopback."""
    if login_host:
        return login_host
    return HOST_LOOPBACK if host == CONTAINER_HOST_ALIAS else host


def is_loopback(host: str) -> bool:
    """Whether ``host`` names the machine itself: inside a container, the container."""
    return host.lower() in LOOPBACK_HOSTS


def is_on_docker_host(host: str) -> bool:
    """Whether the container's URL points at a server on the Docker host itself."""
    return host == CONTAINER_HOST_ALIAS


def container_problems(url: str) -> list[tuple[str, str]]:
    """Problems of a URL that an app container will use: its own parse problems,
    and a loopback host, which inside the container is the container itself."""
    parsed = parse(url)
    problems = list(parsed.problems)
    if parsed.host and is_loopback(parsed.host):
        problems.append(
            (
                "loopback_host",
                f"the database URL's host is {parsed.host}: inside the app's container that "
                "is the container itself, where no PostgreSQL listens. Use "
                f"{CONTAINER_HOST_ALIAS} for a server on the Docker host, or the database "
                "host's address",
            )
        )
    return problems
