"""Filter: the networks a pg_hba.conf admits for each app database's owner,
so that a deploy can keep admitting the networks a change removes until the
app hosts have moved off them (role postgres, postgres_hba_keep_removed)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

HOST_TYPES = ("host", "hostssl", "hostnossl")


def hba_networks(text: str, databases: Iterable[Mapping[str, Any]]) -> list[str]:
    """The addresses of the host lines of pg_hba.conf text that admit one of
    databases (name and owner, as the role's postgres_databases) to its owner
    with a password, in file order, once each. Other lines (local, "all",
    another user, trust) are not the role's and are left out."""
    if not isinstance(text, str):
        raise AnsibleFilterError("chainlit_hba_networks: give it the text of pg_hba.conf")
    owners = {(d.get("name"), d.get("owner")) for d in databases}
    found: list[str] = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 5 or fields[0] not in HOST_TYPES:
            continue
        _kind, database, user, address, method = fields[:5]
        if (database, user) in owners and method == "scram-sha-256" and address not in found:
            found.append(address)
    return found


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"chainlit_hba_networks": hba_networks}
