"""Findings about nginx, the app's front: down or broken, forwarding to a port
the serving container does not publish, missing or bypassed, and releases left
half done."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings.catalogue import (
    entry,
    make,
    run,
)
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings.evidence import (
    answer,
    nginx_error,
    nginx_upstream_ports,
    port_of,
    published,
)

CONCERN = "proxy"
DEPLOY = run("deploy")

entry(
    "proxy_down",
    CONCERN,
    "connection refused on the app's address",
    "nginx, the app's front, was stopped by hand or failed to start (`journalctl -u nginx` says "
    "why). The app's container may be fine, but users reach it only through nginx.",
    f"`systemctl start nginx` (correct what `nginx -t` names first); {DEPLOY} also starts it and "
    "rewrites the app's site.",
)
entry(
    "proxy_config_invalid",
    CONCERN,
    "nothing yet: nginx still serves, but the next release or reboot fails",
    "A file under /etc/nginx was changed since nginx last loaded it: nginx still serves its old "
    "configuration, but the next reload (every release switches with one) or restart fails, "
    "and after a reboot nothing answers.",
    f"Correct what `nginx -t` names and check with `nginx -t`; {DEPLOY} rewrites only the app's "
    "own site.",
)
entry(
    "proxy_upstream_mismatch",
    CONCERN,
    "502 Bad Gateway (or another app's answers) on the app's address",
    "nginx forwards to a port the serving container does not publish.",
    f"Run {DEPLOY}: it releases the app again on a slot port and points nginx at it.",
)
entry(
    "proxy_missing",
    CONCERN,
    "nothing answers on the app's address, while the container answers on its slot port",
    "Nothing forwards the app's address to its container: nginx was removed, or the app's site "
    "was deleted or renamed.",
    f"Run {DEPLOY}: it installs nginx, writes the app's site and points it at the serving "
    "container.",
)
entry(
    "proxy_not_forwarding",
    CONCERN,
    "something else answers on the app's address",
    "What answers at troubleshoot_app_url is not the app's site: another nginx site or another "
    "process holds that address, or the app's address (chainlit_app_listen_address, "
    "chainlit_app_port, chainlit_app_root_path) is not what the deployment used.",
    "`ss -ltnp` shows who listens there, `nginx -T` which server block takes it; remove the "
    f"other one, or run {DEPLOY} with the deployment's variables.",
)
entry(
    "stale_next_container",
    CONCERN,
    "`docker ps -a` shows a {name}-next container beside the serving one",
    "A release (deploy, rebuild or rollback) was interrupted after it started its new container "
    "and before it renamed it: Ctrl-C, a lost connection, a host restart. It holds a slot port "
    "and memory. (If a release runs right now, this is its new container: wait for it.)",
    "`docker rm -f {name}-next`, or run any release again: it removes the leftover first, "
    "unless nginx forwards to it.",
)


def findings(facts: Mapping[str, Any], container_ok: bool) -> list[dict[str, str]]:
    proxy = facts.get("proxy")
    if not isinstance(proxy, Mapping):
        return []
    name = str(facts.get("container_name", "chainlit"))
    url = str((facts.get("health") or {}).get("url", ""))
    front = urlsplit(url).netloc or "the app's address"
    out = _service(proxy, front)
    mismatch = _upstream(facts, name, front)
    down = any(item["id"] == "proxy_down" for item in out)
    route = None if down or mismatch or not container_ok else _route(facts)
    out += [item for item in (mismatch, route, _stale_next(facts, name)) if item]
    return out


def _service(proxy: Mapping[str, Any], front: str) -> list[dict[str, str]]:
    config_error = "" if proxy.get("config_ok", True) else nginx_error(proxy.get("config_test", ""))
    service = str(proxy.get("service") or "").strip()
    if proxy.get("installed") and service != "active":
        return [
            make(
                "proxy_down",
                f"nginx, the app's front, is not running (systemctl is-active nginx: "
                f"{service or 'unknown'}): nothing answers on {front}"
                + (f"; `nginx -t` fails: {config_error}" if config_error else ""),
                "Its configuration is broken, so it cannot start." if config_error else "",
            )
        ]
    if config_error:
        return [
            make(
                "proxy_config_invalid",
                f"nginx runs, but its configuration on disk fails `nginx -t`: {config_error}",
            )
        ]
    return []


def _upstream(facts: Mapping[str, Any], name: str, front: str) -> dict[str, str] | None:
    """nginx forwards to a port the serving container does not publish. What nginx
    really uses is the X-Chainlit-Upstream header it adds; without an answer, the site."""
    proxy = facts["proxy"]
    container = facts.get("container") or {}
    site_file = proxy.get("site_file", "the app's nginx site")
    site_ports = nginx_upstream_ports(proxy.get("site"))
    header_port = port_of(str((facts.get("health") or {}).get("upstream") or ""))
    forwarded = [header_port] if header_port else site_ports
    container_ports = {p["port"] for p in published(container)}
    if not container_ports or not forwarded or set(forwarded) & container_ports:
        return None
    to_next = set(forwarded) & {p["port"] for p in published(facts.get("next_container"))}
    not_reloaded = bool(header_port) and header_port not in site_ports
    only_reload = not_reloaded and bool(set(site_ports) & container_ports)
    if only_reload:
        cause = (
            f"nginx was not reloaded after {site_file} was written (a release interrupted before "
            "its switch): it still forwards to the old port."
        )
        fix = "Or `nginx -t && systemctl reload nginx`: the site already names the right port."
    elif to_next:
        cause = (
            f"A release was interrupted after nginx was switched to its new container {name}-next "
            f"and before that was renamed {name}: the container named {name} is the replaced "
            "release."
        )
        fix = ""
    else:
        cause = (
            f"The container {name} was recreated by hand (docker run) on another port than the "
            "one nginx forwards to: users get 502 Bad Gateway, or the answers of whatever listens "
            "there."
        )
        fix = ""
    return make(
        "proxy_upstream_mismatch",
        f"nginx forwards {front} to 127.0.0.1:{', '.join(forwarded)}"
        + (f" ({name}-next publishes it)" if to_next else "")
        + f", but the serving container {name} publishes "
        + (", ".join(f"{p['ip']}:{p['port']}" for p in published(container)) or "no port")
        + (f"; {site_file} names 127.0.0.1:{', '.join(site_ports)}" if not_reloaded else ""),
        cause,
        fix,
    )


def _route(facts: Mapping[str, Any]) -> dict[str, str] | None:
    """The app answers on its container's port, but not where users reach it, while
    nginx runs and forwards to the right port: no front at all, or another one."""
    proxy = facts["proxy"]
    health = facts.get("health") or {}
    direct = facts.get("direct_health") or {}
    if direct.get("status") != 200 or health.get("status") == 200:
        return None
    url, site_file = health.get("url", "the app's URL"), proxy.get("site_file", "its site")
    if not proxy.get("installed") or proxy.get("site") is None:
        return make(
            "proxy_missing",
            f"GET {url} {answer(health)}, while the app answers on {direct.get('url')}: "
            + (
                "nginx is not installed"
                if not proxy.get("installed")
                else f"nginx has no site for the app ({site_file}: "
                f"{proxy.get('site_error') or 'not found'})"
            ),
        )
    return make(
        "proxy_not_forwarding",
        f"GET {url} {answer(health)}, while the app answers on {direct.get('url')} and "
        f"{site_file} forwards to it",
        "",
        f"(`ss -ltnp 'sport = :{port_of(urlsplit(url).netloc) or 'PORT'}'`)",
    )


def _stale_next(facts: Mapping[str, Any], name: str) -> dict[str, str] | None:
    nxt = facts.get("next_container")
    if not nxt:
        return None
    ports = ", ".join(f"{p['ip']}:{p['port']}" for p in published(nxt)) or "no port"
    return make(
        "stale_next_container",
        f"a container {name}-next exists ({(nxt.get('State') or {}).get('Status', 'unknown')}, "
        f"created {str(nxt.get('Created', '?'))[:19]}, publishes {ports}) beside the serving "
        f"{name}",
        name=name,
    )
