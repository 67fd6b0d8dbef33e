"""Filters on the collection's roles' inputs (their argument specs): the
variables of a host that look like an input but that no role declares (a
misspelt chainlit_app_databse_url is otherwise silently ignored), each with the
declared name it most resembles; and the inputs of one role, which a role
fingerprints to check them once per run."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from ansible.errors import AnsibleFilterError

# libyaml's loader when PyYAML has it: each forked task parses the specs again.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"
# Set by the roles themselves as results for the playbooks (documented in
# each role's README), not inputs.
OUTPUTS = {
    "backup_file",
    "backup_fetched_file",
    "backup_fingerprint",
    "chainlit_app_released",
    "chainlit_app_schema_upgrade",
}


@cache
def declared() -> dict[str, frozenset[str]]:
    """Each role's prefix ("<role>_") and every option its argument specs declare."""
    found: dict[str, set[str]] = {}
    for spec_file in sorted(ROLES_DIR.glob("*/meta/argument_specs.yml")):
        role = spec_file.parent.parent.name
        specs = (yaml.load(spec_file.read_text(), Loader=LOADER) or {}).get("argument_specs") or {}
        names = found.setdefault(f"{role}_", set())
        for entry in specs.values():
            names.update((entry or {}).get("options") or {})
    return {prefix: frozenset(names) for prefix, names in found.items()}


def undeclared_variables(names: Iterable[str]) -> list[dict[str, str]]:
    """[{name, role, suggestion}] for every name with a role's prefix that no
    role declares; suggestion is the closest declared name ("" when none)."""
    roles = declared()
    out = []
    for name in sorted(set(names)):
        if name in OUTPUTS:
            continue
        for prefix, options in roles.items():
            if name.startswith(prefix) and name not in options:
                close = difflib.get_close_matches(name, sorted(options), n=1, cutoff=0.88)
                out.append(
                    {"name": name, "role": prefix[:-1], "suggestion": close[0] if close else ""}
                )
                break
    return out


def role_inputs(role: str) -> list[str]:
    """Every option the role's argument specs declare, sorted."""
    try:
        return sorted(declared()[f"{role}_"])
    except KeyError:
        raise AnsibleFilterError(f"the collection has no role {role}") from None


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "chainlit_undeclared_variables": undeclared_variables,
            "chainlit_role_inputs": role_inputs,
        }
