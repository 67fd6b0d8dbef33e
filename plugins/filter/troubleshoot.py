"""Filters of the role troubleshoot: read what the probes gathered, name each
fault with its cause and fix (module_utils/findings), and print the report.
Nothing here prints a secret: database URLs are masked and .env values are
never shown."""

from __future__ import annotations

from typing import Any

from ansible_collections.chainlit_deploy.stack.plugins.module_utils.database_url import mask
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings import compose
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings.catalogue import (
    report,
)
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings.classify import (
    database_url_of,
    db_params,
    findings,
)
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings.evidence import (
    direct_url,
    image_label,
)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "troubleshoot_mask_url": mask,
            "troubleshoot_database_url": database_url_of,
            "troubleshoot_db_params": db_params,
            "troubleshoot_direct_url": direct_url,
            "troubleshoot_image_label": image_label,
            "troubleshoot_findings": findings,
            "troubleshoot_report": report,
            "troubleshoot_compose_findings": compose.findings,
            "troubleshoot_compose_notes": compose.notes,
        }
