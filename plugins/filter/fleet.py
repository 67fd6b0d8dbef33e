"""Filters of the deploy playbook's first play: the fleet's app hosts
checked together before any host changes (module_utils/fleet.py)."""

from __future__ import annotations

from typing import Any

from ansible_collections.chainlit_deploy.stack.plugins.module_utils.fleet import (
    address_allowed,
    auth_secret_problems,
    database_admission_problems,
    fleet_problems,
)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "chainlit_address_allowed": address_allowed,
            "chainlit_auth_secret_problems": auth_secret_problems,
            "chainlit_database_admission_problems": database_admission_problems,
            "chainlit_fleet_problems": fleet_problems,
        }
