"""Generated secrets and fetched dumps live beside the inventory, yet Ansible
must never read them as inventory: an inventory directory is read file by
file, and a password file there became a host named after the password."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Zq7secretPasswordXy9"
DEFAULTS = {
    "postgres": "postgres_credentials_dir",
    "chainlit_app": "chainlit_app_credentials_dir",
    "verify": "verify_credentials_dir",
    "backup": "backup_fetch_dir",
}


def hosts_seen(inventory: Path) -> set[str]:
    listed = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(inventory), "--list"],
        capture_output=True,
        text=True,
        check=True,
    )
    groups = json.loads(listed.stdout)
    return {host for group in groups.values() for host in group.get("hosts", [])}


def inventory_with_generated_files(tmp_path: Path, credentials: str, backups: str) -> Path:
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text("all:\n  hosts:\n    app1:\n")
    secret = inventory / credentials / "app1" / "postgres-chainlit.password"
    secret.parent.mkdir(parents=True)
    secret.write_text(SECRET + "\n")
    dump = inventory / backups / "app1" / "chainlit-20261201T000000Z.dump"
    dump.parent.mkdir(parents=True)
    dump.write_bytes(b"PGDMP\x01\x0e\x00\x04\x08\x01\x01\nthirdparty\n")
    return inventory


@pytest.mark.parametrize(("role", "variable"), sorted(DEFAULTS.items()))
def test_the_defaults_keep_generated_files_in_a_dot_directory_beside_the_inventory(
    role: str, variable: str
) -> None:
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())
    assert defaults[variable].startswith("{{ inventory_dir }}/."), defaults[variable]


def test_files_in_the_default_places_are_not_read_as_inventory(tmp_path: Path) -> None:
    assert hosts_seen(inventory_with_generated_files(tmp_path, ".credentials", ".backups")) == {
        "app1"
    }


def test_without_the_dot_the_password_would_become_a_host(tmp_path: Path) -> None:
    """The control: what the earlier defaults did to an inventory directory."""
    seen = hosts_seen(inventory_with_generated_files(tmp_path, "credentials", "backups"))
    assert SECRET in seen
