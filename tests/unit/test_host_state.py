"""chainlit_host_state: what the roles compare with what they would write."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible.plugins.filter.core import get_hash
from ansible_collections.chainlit_deploy.stack.plugins.filter.host_state import (
    interface_facts,
    path_differs,
)
from ansible_collections.chainlit_deploy.stack.plugins.modules import chainlit_host_state as state


def test_a_file_reports_its_mode_and_the_checksum_ansibles_hash_filter_gives(tmp_path):
    text = '{\n  "live-restore": true,\n  "log-level": "warn"\n}'
    path = tmp_path / "daemon.json"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o640)
    found = state.path_state(str(path))
    assert found["exists"] is True
    assert found["type"] == "file"
    assert found["mode"] == "0640"
    # The roles compare with lookup('template', ...) | hash('sha1') on the controller.
    assert found["checksum"] == get_hash(text, "sha1")
    path.write_text(text + "\n", encoding="utf-8")
    assert state.path_state(str(path))["checksum"] != get_hash(text, "sha1")


def test_a_directory_a_link_and_a_missing_path(tmp_path):
    (tmp_path / "etc").mkdir(mode=0o755)
    (tmp_path / "default").symlink_to(tmp_path / "nowhere")
    directory = state.path_state(str(tmp_path / "etc"))
    assert (directory["type"], directory["checksum"]) == ("directory", "")
    # A dangling link (a site in sites-enabled) still exists.
    link = state.path_state(str(tmp_path / "default"))
    assert (link["exists"], link["type"]) == (True, "link")
    missing = state.path_state(str(tmp_path / "absent"))
    assert (missing["exists"], missing["type"], missing["mode"]) == (False, "absent", "")


def test_without_systemctl_or_dpkg_the_answers_say_so_and_never_match(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert state.unit_states(["docker"]) == {"docker": {"active": "unknown", "enabled": "unknown"}}
    # Not 'ii': the role installs (or, in check mode, reports it would).
    assert state.package_states(["nginx", "docker.io"]) == {"nginx": "", "docker.io": ""}


def test_dpkg_status_is_read_per_package_multiarch_names_included(monkeypatch, tmp_path):
    fake = tmp_path / "dpkg-query"
    fake.write_text("#!/bin/sh\nprintf 'nginx ii \\npython3-requests:all ii \\ndocker.io rc \\n'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    found = state.package_states(["nginx", "python3-requests", "docker.io", "absent"])
    assert found == {"nginx": "ii", "python3-requests": "ii", "docker.io": "rc", "absent": ""}


def test_path_differs_compares_what_a_task_would_make_with_what_the_host_has(tmp_path):
    text = "listen_addresses = '127.0.0.1'\n"
    path = tmp_path / "50-ansible.conf"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o644)
    found = state.path_state(str(path))
    me = (found["owner"], found["group"])
    assert not path_differs(found, "file", *me, "0644", text)
    assert not path_differs(found, "file", *me, "0644", checksum=get_hash(text, "sha1"))
    # Each of content, mode, owner and type makes it differ.
    assert path_differs(found, "file", *me, "0644", text + "\n")
    assert path_differs(found, "file", *me, "0640", text)
    assert path_differs(found, "file", "nobody", me[1], "0644", text)
    assert path_differs(found, "directory", *me, "0644")
    assert path_differs(state.path_state(str(tmp_path / "absent")), "file", *me, "0644", text)
    directory = state.path_state(str(tmp_path))
    assert not path_differs(directory, "directory", *me, directory["mode"])


def test_path_differs_refuses_a_file_without_content_or_checksum():
    with pytest.raises(AnsibleFilterError, match="content or its checksum"):
        path_differs({}, "file", "root", "root", "0644")
    with pytest.raises(AnsibleFilterError, match="kind must be"):
        path_differs({}, "socket", "root", "root", "0644")


def test_interface_facts_finds_a_bridge_under_the_key_the_setup_module_gives_it():
    chainlit0 = {"device": "chainlit0", "ipv4": {"address": "172.30.0.1"}}
    br_lan = {"device": "br-lan", "ipv4": {"address": "10.9.0.1"}}
    facts = {"chainlit0": chainlit0, "br_lan": br_lan, "lo": {"device": "lo"}}
    assert interface_facts(facts, "chainlit0") == chainlit0
    # The setup module makes '-' (and ':') '_' in the key; the device keeps its name.
    assert interface_facts(facts, "br-lan") == br_lan
    # Missing, or another interface's facts under the same key: not this one.
    assert interface_facts(facts, "chainlit1") == ""
    assert interface_facts(facts, "br_lan") == ""
    # Before facts are gathered (check mode on a fresh host): ''.
    assert interface_facts({}, "docker0") == ""
    with pytest.raises(AnsibleFilterError, match="interface name"):
        interface_facts(facts, "")
