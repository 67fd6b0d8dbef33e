"""The collection as an operator gets it, on an instance where nothing is
installed: check mode previews a deploy, bad input is refused before any
change, and the built collection, installed outside this repository, deploys
from an operator's own project; verify passes on it."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

ROOT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).parents[3]))
DB_SECRET = "Sup3rS3cretPw-9f2c"


def snapshot(host) -> str:
    """What a refused or check-mode run must leave as it was: the packages, and
    the places the roles write. Not the harness's image archives
    (/opt/harness-images, the checkout's .cache/images mounted read-only):
    another lane's build writes there (seen failing molecule/fleet's twin)."""
    return host.check_output(
        "dpkg-query -W -f '${Package} ${Version}\\n' | md5sum; "
        "ls -la --ignore=harness-images /opt /etc/chainlit-deploy /etc/nginx /etc/docker "
        "/var/lib/postgresql 2>&1 | md5sum"
    )


@pytest.fixture(scope="module")
def fresh(host) -> str:
    state = snapshot(host)
    assert not host.exists("docker"), "the instance must start without Docker"
    return state


def test_check_mode_on_a_fresh_host_completes_and_reports_what_it_would_change(
    host, fresh, run_playbook, changed_count
):
    result = run_playbook("deploy.yml", None, "--check", "--diff")
    assert result.returncode == 0, result.stdout
    assert changed_count(result) > 0
    assert "Check mode: Docker is not installed" in result.stdout
    assert snapshot(host) == fresh


def third_party_app(tmp_path: Path, spec: str) -> str:
    """An app directory made for the test from "APP:<requirements>[:no-entry]"."""
    _, requirements, *flags = spec.split(":")
    app = tmp_path / "their-app"
    app.mkdir()
    (app / "requirements.txt").write_text(requirements.replace(";", "\n") + "\n")
    if "no-entry" in flags:
        (app / "Dockerfile").write_text("FROM python:3.12-slim\nCOPY main.py /app/\n")
    else:
        (app / "app.py").write_text("import chainlit as cl\n")
    return str(app)


REFUSALS = [
    ({"chainlit_app_port": 8444}, "chainlit_app_port 8444 is already held on this host"),
    (
        {"chainlit_app_port": 5432},
        "chainlit_app_port 5432 is already held on this host by PostgreSQL",
    ),
    (
        {"chainlit_app_slot_ports": [8502, 8602]},
        "chainlit_app_slot_ports [8502, 8602] include chainlit_app_port 8502",
    ),
    ({"chainlit_app_users": []}, "chainlit_app_users is empty: nobody could log in"),
    (
        {"chainlit_app_databse_url": "postgresql://x:y@db/z"},
        "chainlit_app_databse_url is not a variable of the role chainlit_app and would be "
        "ignored: did you mean chainlit_app_database_url?",
    ),
    (
        {"postgres_app_networks": ["0.0.0.0/0"]},
        "postgres_app_networks contains 0.0.0.0/0",
    ),
    (
        {"chainlit_app_database_url": f"chainlit:{DB_SECRET}@db.example.org:5432/chainlit"},
        "chainlit_app_database_url: the database URL does not start with postgresql://",
    ),
    (
        {"chainlit_app_database_url": f"postgresql://chainlit:{DB_SECRET}@localhost/chainlit"},
        "chainlit_app_database_url: the database URL's host is localhost",
    ),
    (
        {"chainlit_app_database_url": f"postgresql://chainlit:p@ss{DB_SECRET}@db:5432/chainlit"},
        "the password in the database URL holds unencoded reserved characters (@)",
    ),
    (
        {"chainlit_app_src": "APP:chainlit==2.12.0:no-entry"},
        "chainlit_app_module 'app.py' is not a file",
    ),
    (
        {"chainlit_app_src": "APP:chainlit==1.3.2;asyncpg"},
        "chainlit 1.3.2 is outside the supported range 2.0.601 to 2.12.x",
    ),
    (
        {"chainlit_app_src": "APP:chainlit==2.0.6"},
        "chainlit 2.0.6 prints every login token",
    ),
    (
        {"chainlit_app_src": "APP:chainlit>=2.0"},
        "the app asks for chainlit>=2.0, not one release: pin it",
    ),
    (
        {"chainlit_app_expected_version": "2.8.5"},
        "chainlit_app_expected_version is 2.8.5 but the app pins chainlit 2.12.0",
    ),
]


@pytest.mark.parametrize(("extra_vars", "message"), REFUSALS, ids=lambda v: str(v)[:48])
def test_bad_input_is_refused_before_any_host_changes(
    host, fresh, run_playbook, tmp_path, extra_vars, message
):
    if str(extra_vars.get("chainlit_app_src")).startswith("APP:"):
        extra_vars = {"chainlit_app_src": third_party_app(tmp_path, extra_vars["chainlit_app_src"])}
    result = run_playbook("deploy.yml", extra_vars)
    assert result.returncode != 0, result.stdout
    assert message in " ".join(result.stdout.split()), result.stdout
    # No message may hold any part of a secret.
    assert DB_SECRET not in result.stdout
    assert DB_SECRET[:8] not in result.stdout
    # The first play refused it: no role ran on any host.
    assert "Docker Engine on the app hosts" not in result.stdout
    assert snapshot(host) == fresh


def ansible(*args: str, cwd: Path, collections: Path) -> subprocess.CompletedProcess[str]:
    """A command of the operator's project: its own ansible.cfg, and only the
    installed collection (and those the ansible package bundles)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    env.update(
        ANSIBLE_CONFIG=str(cwd / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
    )
    return subprocess.run(
        args, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def test_the_built_collection_installed_elsewhere_deploys_from_an_operators_project(
    instance_name, tmp_path
):
    build = tmp_path / "build"
    done = subprocess.run(
        ["ansible-galaxy", "collection", "build", str(ROOT), "--output-path", str(build)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tarball = next(build.glob("chainlit_deploy-stack-*.tar.gz"))
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
        assert not [m.name for m in archive.getmembers() if m.issym() or m.islnk()]
    assert "roles/chainlit_app/tasks/main.yml" in names
    assert "plugins/module_utils/database_url.py" in names
    for left_out in ("molecule/", "tests/", "harness/", "bench/", "app/", "inventory/"):
        assert not [n for n in names if n.startswith(left_out)], left_out

    # The operator's project: an inventory, a vault-less group_vars and a
    # playbook naming the roles by FQCN only, in a directory of its own.
    project = tmp_path / "project"
    (project / "inventory" / "group_vars").mkdir(parents=True)
    (project / "ansible.cfg").write_text("[defaults]\ninterpreter_python = auto_silent\n")

    # Installed with the operator's environment: this checkout's own link to
    # itself must not make ansible-galaxy think it is installed already.
    collections = tmp_path / "collections"
    done = ansible(
        "ansible-galaxy",
        "collection",
        "install",
        str(tarball),
        "-p",
        str(collections),
        cwd=project,
        collections=collections,
    )
    assert done.returncode == 0, done.stdout
    assert "chainlit_deploy.stack:1.0.0 was installed successfully" in done.stdout, done.stdout
    (project / "inventory" / "hosts.yml").write_text(
        json.dumps(
            {
                "all": {
                    "children": {
                        "chainlit": {"hosts": {"app1": None}},
                        "postgres": {"hosts": {"app1": None}},
                    },
                    "vars": {
                        "ansible_connection": "community.docker.docker_api",
                        "ansible_host": instance_name,
                        "ansible_python_interpreter": "/usr/bin/python3",
                        # As .config/molecule/config.yml: two busy lanes made
                        # the outer engine answer late ("timed out").
                        "ansible_docker_timeout": 60,
                    },
                }
            }
        )
    )
    (project / "inventory" / "group_vars" / "all.yml").write_text(
        json.dumps(
            {
                "postgres_databases": [{"name": "chainlit", "owner": "chainlit"}],
                "chainlit_app_src": str(ROOT / "app"),
                "chainlit_app_base_image": "chainlit-deploy/python-base:bookworm",
                "chainlit_app_base_image_archive": "/opt/harness-images/python-base.tar",
                "chainlit_app_ca_bundle": "/etc/ssl/certs/ca-certificates.crt",
                "chainlit_app_wheelhouse": str(ROOT / ".cache/wheelhouse"),
                "chainlit_app_image_archive_dir": str(ROOT / ".cache/images/app"),
                "chainlit_app_users": [{"name": "carol", "password": "an operator's password"}],
                "verify_expect_context": True,
            }
        )
    )
    (project / "site.yml").write_text(
        "- hosts: chainlit\n  become: true\n  roles:\n    - chainlit_deploy.stack.docker\n"
        "- hosts: postgres\n  become: true\n  roles:\n    - chainlit_deploy.stack.postgres\n"
        "- hosts: chainlit\n  become: true\n  roles:\n    - chainlit_deploy.stack.chainlit_app\n"
    )
    deployed = ansible(
        "ansible-playbook", "-i", "inventory", "site.yml", cwd=project, collections=collections
    )
    assert deployed.returncode == 0, deployed.stdout
    assert "chainlit_deploy" in next((collections / "ansible_collections").iterdir()).name
    # Credentials go beside the operator's inventory (in a dot-directory, which
    # Ansible does not read as inventory), not into the collection.
    assert (project / "inventory" / ".credentials" / "chainlit-auth-secret").is_file()
    assert not list(collections.rglob("*credentials"))

    again = ansible(
        "ansible-playbook",
        "-i",
        "inventory",
        "chainlit_deploy.stack.deploy",
        cwd=project,
        collections=collections,
    )
    assert again.returncode == 0, again.stdout
    assert " changed=0 " in again.stdout, again.stdout

    verified = ansible(
        "ansible-playbook",
        "-i",
        "inventory",
        "chainlit_deploy.stack.verify",
        cwd=project,
        collections=collections,
    )
    assert verified.returncode == 0, verified.stdout
    assert "Every check passed" in verified.stdout
