"""Filters of the load balancer role: the app hosts as HAProxy servers, and
the certificate and key checked before any host changes (module_utils/tls.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.chainlit_deploy.stack.plugins.module_utils.tls import tls_problems


def lb_backend(host: Mapping[str, Any], address_var: str, port: int) -> dict[str, Any]:
    """The HAProxy server of one app host (its hostvars): its inventory name,
    its private address and the port of its nginx."""
    name = str(host.get("inventory_hostname", ""))
    return {
        "name": name,
        "address": str(host.get(address_var) or name),
        "port": int(host.get("chainlit_app_port") or port),
    }


def tls_pair_problems(
    cert_pem: str, key_pem: str, host: str = "", cert_var: str = "", key_var: str = ""
) -> list[str]:
    """Problems of the certificate and key for the public host (none checked
    when empty), none when good; the sentences name the variables given, the
    load balancer's by default."""
    names = {"cert_var": cert_var, "key_var": key_var}
    given = {name: value for name, value in names.items() if value}
    return tls_problems(cert_pem or "", key_pem or "", host, **given)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "chainlit_lb_backend": lb_backend,
            "chainlit_tls_problems": tls_pair_problems,
        }
