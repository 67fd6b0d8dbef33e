"""Fixtures shared by the Molecule scenarios' testinfra tests.

Molecule runs these tests with its provisioner environment: ANSIBLE_CONFIG,
MOLECULE_INVENTORY_FILE, MOLECULE_SCENARIO_DIRECTORY and friends are set.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

PlaybookRunner = Callable[..., subprocess.CompletedProcess[str]]


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run these tests through molecule")
    return value


@pytest.fixture(scope="session")
def scenario_dir() -> Path:
    return Path(_env("MOLECULE_SCENARIO_DIRECTORY"))


@pytest.fixture(scope="session")
def instance_name() -> str:
    """The outer container of the first instance (molecule-<scenario>-<distro>)."""
    inventory = subprocess.run(
        ["ansible-inventory", "-i", _env("MOLECULE_INVENTORY_FILE"), "--list"],
        check=True,
        capture_output=True,
        text=True,
    )
    names = sorted(json.loads(inventory.stdout)["_meta"]["hostvars"])
    if not names:
        pytest.fail("the molecule inventory lists no instance")
    return names[0]


@pytest.fixture
def run_playbook(scenario_dir: Path) -> PlaybookRunner:
    """Run a playbook of the scenario against the instance.

    The result's stdout holds stdout and stderr together, without colour
    (ansible-core prints task errors on stderr).
    """

    def run(
        playbook: str = "converge.yml",
        extra_vars: dict[str, object] | None = None,
        *args: str,
    ) -> subprocess.CompletedProcess[str]:
        command = [
            "ansible-playbook",
            "-i",
            _env("MOLECULE_INVENTORY_FILE"),
            str(scenario_dir / playbook),
            *args,
        ]
        if extra_vars:
            command += ["-e", json.dumps(extra_vars)]
        env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
        return subprocess.run(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
            env=env,
        )

    return run


def _changed_count(result: subprocess.CompletedProcess[str]) -> int:
    recaps = [line for line in result.stdout.splitlines() if " ok=" in line and " changed=" in line]
    if not recaps:
        pytest.fail(f"no play recap in the output:\n{result.stdout}")
    return sum(int(line.split(" changed=")[1].split()[0]) for line in recaps)


@pytest.fixture
def changed_count() -> Callable[[subprocess.CompletedProcess[str]], int]:
    """Sum of changed=N over a play recap; fails when there is no recap."""
    return _changed_count


@pytest.fixture
def restart_instance(instance_name: str) -> Callable[[], None]:
    """Restart the instance's container, as a VM reboot, and wait for systemd."""

    def restart() -> None:
        subprocess.run(["docker", "restart", instance_name], check=True, capture_output=True)
        deadline = time.monotonic() + 120
        state = ""
        while time.monotonic() < deadline:
            probe = subprocess.run(
                ["docker", "exec", instance_name, "systemctl", "is-system-running"],
                capture_output=True,
                text=True,
                check=False,
            )
            state = probe.stdout.strip()
            if state in ("running", "degraded"):
                return
            time.sleep(1)
        pytest.fail(f"{instance_name}: systemd did not finish booting (state {state!r})")

    return restart


def _make_pair(name: str, days: int = 30, key=None) -> tuple[str, str]:
    """A self-signed certificate for ``name`` valid ``days`` from now, and its key (PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = key or ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=2))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


@pytest.fixture
def make_pair() -> Callable[..., tuple[str, str]]:
    return _make_pair
