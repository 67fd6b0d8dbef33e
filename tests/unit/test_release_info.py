"""chainlit_release_info: the app's containers and image in one read, without
their environment (it holds the database password and the auth secret)."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.chainlit_deploy.stack.plugins.filter import inputs
from ansible_collections.chainlit_deploy.stack.plugins.modules import chainlit_release_info as info

NAMES = {"serving": "chat", "next": "chat-next", "previous": "chat-previous"}
SECRET = "DATABASE_URL=postgresql://chat:s3cr3t-pw@host.docker.internal:5432/chat"


def inspected(name: str, port: str, running: bool = True) -> dict:
    """A container as `docker container inspect` prints it (abridged)."""
    return {
        "Id": f"id-{name}",
        "Name": f"/{name}",
        "Image": f"sha256:{name}",
        "State": {"Running": running, "Status": "running" if running else "exited", "Pid": 7},
        "Config": {"Env": [SECRET, "CHAINLIT_AUTH_SECRET=abc"], "Labels": {"release": "r1"}},
        "HostConfig": {"PortBindings": {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": port}]}},
        "NetworkSettings": {"Ports": {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": port}]}},
    }


class FakeModule:
    """What the module's readers need of AnsibleModule: run_command."""

    def __init__(self, answers: dict[str, tuple[int, str, str]]):
        self.answers = answers
        self.calls: list[list[str]] = []

    def run_command(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(argv)
        return self.answers[argv[1]]


def test_each_container_has_what_a_release_decides_on_and_never_its_environment():
    found = info.by_name(
        [inspected("chat", "8601"), inspected("chat-previous", "8602", False)], NAMES
    )
    assert found["serving"]["exists"] and found["previous"]["exists"]
    assert found["next"] == {"exists": False, "container": {}}
    serving = found["serving"]["container"]
    assert serving["State"] == {"Running": True, "Status": "running"}
    assert serving["Config"] == {"Labels": {"release": "r1"}}
    assert serving["HostConfig"]["PortBindings"]["8000/tcp"][0]["HostPort"] == "8601"
    assert found["previous"]["container"]["State"]["Running"] is False
    assert "s3cr3t-pw" not in json.dumps(found) and "Env" not in json.dumps(found)


def test_one_docker_call_reads_every_container_even_when_some_are_missing():
    # docker container inspect exits 1 when any name is missing, and still
    # prints the ones it found.
    printed = json.dumps([inspected("chat-next", "8602")])
    module = FakeModule({"container": (1, printed, "Error: No such container: chat")})
    found = info.container_states(module, "/usr/bin/docker", NAMES)
    assert module.calls == [["/usr/bin/docker", "container", "inspect", *NAMES.values()]]
    assert [role for role, item in found.items() if item["exists"]] == ["next"]


def test_without_docker_nothing_exists_and_no_image_is_found():
    module = FakeModule({})
    assert all(not item["exists"] for item in info.container_states(module, None, NAMES).values())
    assert info.image_ids(module, None, "chainlit-app:abc") == []
    assert module.calls == []


def test_the_image_is_found_by_id_or_reported_absent():
    there = FakeModule({"image": (0, "sha256:0123\n", "")})
    assert info.image_ids(there, "docker", "chainlit-app:abc") == [{"Id": "sha256:0123"}]
    absent = FakeModule({"image": (1, "", "Error: No such image: chainlit-app:abc")})
    assert info.image_ids(absent, "docker", "chainlit-app:abc") == []


def test_a_roles_inputs_are_the_options_its_argument_specs_declare():
    names = inputs.role_inputs("chainlit_app")
    assert "chainlit_app_src" in names and "chainlit_app_db_password" in names
    assert names == sorted(names)
    assert "chainlit_app_released" not in names  # an output, set by the role
    assert "postgres_port" in inputs.role_inputs("postgres")
    with pytest.raises(AnsibleFilterError, match="no role chainlit"):
        inputs.role_inputs("chainlit")
