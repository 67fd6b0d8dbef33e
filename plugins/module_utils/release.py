"""The release contract of an app on a host: the names and paths every role
and playbook of the collection uses for it, derived in this one place.

The chainlit_app role writes the contract of each app it deploys to
``/etc/chainlit-deploy/<name>.json`` (MANIFEST_DIR); the module
chainlit_release_info reads it back for verify, troubleshoot, backup/restore
and the playbooks, so they never copy the role's defaults.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MANIFEST_DIR = "/etc/chainlit-deploy"
# Port of Chainlit inside the app's container.
CONTAINER_PORT = 8000
# Labels on the app's containers and images.
APP_LABEL = "io.chainlit-deploy.app"
RELEASE_LABEL = "io.chainlit-deploy.release"
# On the build stage of the generic and the reference Dockerfile: the image
# kept as the app's build cache is found by it.
STAGE_LABEL = "io.chainlit-deploy.stage"
# Response header nginx adds: which slot answered.
UPSTREAM_HEADER = "X-Chainlit-Upstream"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class Release:
    """Inputs of the contract (the chainlit_app role's variables of the same names)."""

    name: str = "chainlit"
    app_dir: str = "/opt/chainlit"
    listen_address: str = "127.0.0.1"
    port: int = 8502
    root_path: str = ""
    slot_ports: tuple[int, ...] = (8601, 8602)
    # What the role records about the release (not naming: facts of the last deploy).
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> str:
        """The root path without a trailing slash ("" at the top)."""
        return self.root_path.rstrip("/")

    @property
    def local_address(self) -> str:
        """Where the host itself reaches nginx for the app."""
        return "127.0.0.1" if self.listen_address in WILDCARD_ADDRESSES else self.listen_address

    def contract(self) -> dict[str, Any]:
        host = f"[{self.local_address}]" if ":" in self.local_address else self.local_address
        return {
            "name": self.name,
            "containers": {
                "serving": self.name,
                "next": f"{self.name}-next",
                "previous": f"{self.name}-previous",
            },
            "image_repository": f"{self.name}-app",
            "previous_image": f"{self.name}-app:previous",
            # The last build stage (its installed packages), one per app.
            "build_cache_image": f"{self.name}-app-build:cache",
            "app_dir": self.app_dir,
            "env_file": f"{self.app_dir}/.env",
            "schema_dir": f"{self.app_dir}/schema",
            "build_dir": f"{self.app_dir}/build",
            "nginx_site": f"/etc/nginx/conf.d/chainlit-deploy-{self.name}.conf",
            "listen_address": self.listen_address,
            "port": int(self.port),
            "root_path": self.root,
            "slot_ports": [int(p) for p in self.slot_ports],
            "container_port": CONTAINER_PORT,
            "app_url": f"http://{host}:{int(self.port)}{self.root}",
            "health_url_in_container": f"http://127.0.0.1:{CONTAINER_PORT}{self.root}/health",
            "manifest": manifest_path(self.name),
            "labels": {"app": APP_LABEL, "release": RELEASE_LABEL, "stage": STAGE_LABEL},
            "upstream_header": UPSTREAM_HEADER,
            **({"facts": dict(self.facts)} if self.facts else {}),
        }


def manifest_path(name: str) -> str:
    return f"{MANIFEST_DIR}/{name}.json"


def contract(
    name: str = "chainlit",
    app_dir: str = "/opt/chainlit",
    listen_address: str = "127.0.0.1",
    port: int = 8502,
    root_path: str = "",
    slot_ports: Sequence[int] = (8601, 8602),
    facts: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return Release(
        name,
        app_dir,
        listen_address,
        int(port),
        root_path or "",
        tuple(slot_ports),
        dict(facts or {}),
    ).contract()


def from_manifest(text: str) -> dict[str, Any]:
    """The contract a manifest records, recomputed from its inputs (so that a
    manifest written by an older release of the collection still yields every
    name this one knows)."""
    data = json.loads(text)
    return contract(
        name=data["name"],
        app_dir=data.get("app_dir", "/opt/chainlit"),
        listen_address=data.get("listen_address", "127.0.0.1"),
        port=int(data.get("port", 8502)),
        root_path=data.get("root_path", ""),
        slot_ports=data.get("slot_ports", (8601, 8602)),
        facts=data.get("facts") or {},
    )
