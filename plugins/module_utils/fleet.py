"""The fleet as a whole, checked on the controller before any host changes:
every app host signs sessions with the same auth secret, and the database
host admits each app host's address (its pg_hba, postgres_app_networks).
Pure functions over what each host reported in the first play of deploy."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping


def address_allowed(address: str, networks: Iterable[str]) -> bool:
    """Whether `address` is inside one of the CIDR `networks` (entries that
    are not CIDR, e.g. an empty Docker bridge on a host without Docker, admit
    nothing)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    for network in networks:
        try:
            if ip in ipaddress.ip_network(str(network).strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


def auth_secret_problems(digests: Mapping[str, str]) -> list[str]:
    """A sentence when the app hosts (name -> digest of their
    chainlit_app_auth_secret) do not all sign with the same secret. Only the
    hosts' names are shown, never a secret or its digest."""
    groups: dict[str, list[str]] = {}
    for host, digest in sorted(digests.items()):
        groups.setdefault(str(digest), []).append(host)
    if len(groups) <= 1:
        return []
    parts = "; ".join(", ".join(hosts) for hosts in sorted(groups.values()))
    return [
        f"chainlit_app_auth_secret differs across the app hosts (the same secret on: {parts}): "
        "a browser logged in through one host is refused by the others. Set it once for the "
        "whole group (group_vars/chainlit, from the vault), not per host."
    ]


def database_admission_problems(
    app_hosts: Mapping[str, Mapping[str, str]], database_networks: Mapping[str, Iterable[str]]
) -> list[str]:
    """Sentences for each app host whose address, as its database host sees
    it, is not in that database host's postgres_app_networks.

    app_hosts: name -> {"database_host": inventory name of the database host,
    "address": the app host's source address towards it}. Hosts whose
    database is not a host of group postgres (a managed database, or the same
    host through the Docker bridge: no address) are skipped."""
    problems = []
    for host, facts in sorted(app_hosts.items()):
        database, address = facts.get("database_host", ""), facts.get("address", "")
        if not address or database not in database_networks:
            continue
        networks = [str(n) for n in database_networks[database] if str(n)]
        if not address_allowed(address, networks):
            problems.append(
                f"app host {host} reaches the database host {database} from {address}, which "
                f"PostgreSQL would refuse: postgres_app_networks of {database} is "
                f"[{', '.join(networks)}]. Add {address}/32 (or its private network) to "
                f"postgres_app_networks in {database}'s group_vars (group postgres)."
            )
    return problems


def fleet_problems(
    apps: Mapping[str, Mapping[str, str]], database_networks: Mapping[str, Iterable[str]]
) -> list[str]:
    """Every problem of the fleet as a whole. apps: name -> {"auth_secret_digest",
    "database_host", "address"}; database_networks: name of each database host
    -> the networks its pg_hba.conf admits."""
    return auth_secret_problems(
        {host: str(facts.get("auth_secret_digest", "")) for host, facts in apps.items()}
    ) + database_admission_problems(apps, database_networks)
