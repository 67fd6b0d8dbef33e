"""Filters on what is known of a host: whether a path, as module
chainlit_host_state read it, differs from what a task would make of it (type,
owner, group, mode and, for a file, its content), so that the task is skipped
when it would change nothing; and a network interface's gathered facts."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_bytes

KINDS = ("file", "directory", "link")


def path_differs(
    state: Mapping[str, Any],
    kind: str,
    owner: str,
    group: str,
    mode: str,
    content: str | None = None,
    checksum: str | None = None,
) -> bool:
    """True unless state (chainlit_host_state's paths[...]) is a kind owned by
    owner:group with mode and, for a file, holds content (or has the SHA-1
    checksum; one of the two is required for a file)."""
    if kind not in KINDS:
        raise AnsibleFilterError(f"chainlit_path_differs: kind must be one of {', '.join(KINDS)}")
    if kind == "file" and (content is None) == (checksum is None):
        raise AnsibleFilterError("chainlit_path_differs: a file needs its content or its checksum")
    if kind == "file":
        checksum = (
            checksum or hashlib.sha1(to_bytes(content, errors="surrogate_or_strict")).hexdigest()
        )
    want = [kind, owner, group, mode, checksum if kind == "file" else ""]
    have = [state.get(key, "") for key in ("type", "owner", "group", "mode", "checksum")]
    if kind != "file":
        have[-1] = ""
    return have != want


def interface_facts(facts: Mapping[str, Any], name: str) -> Mapping[str, Any] | str:
    """The gathered facts of network interface name (ansible_facts as the
    setup module left them), or '' when the host has no such interface or
    its network facts were not gathered. The setup module keys an interface
    by its name with '-' and ':' made '_' (chainlit0, br_lan for br-lan)."""
    if not isinstance(facts, Mapping):
        raise AnsibleFilterError("chainlit_interface_facts: give it ansible_facts")
    if not isinstance(name, str) or not name:
        raise AnsibleFilterError("chainlit_interface_facts: give it an interface name")
    keys = [name, name.replace("-", "_").replace(":", "_")]
    keys.append(keys[-1].replace(".", "_"))
    for key in keys:
        found = facts.get(key)
        if isinstance(found, Mapping) and found.get("device", name) == name:
            return found
    return ""


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "chainlit_path_differs": path_differs,
            "chainlit_interface_facts": interface_facts,
        }
