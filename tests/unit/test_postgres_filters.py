"""chainlit_hba_networks: what a pg_hba.conf in force admits for the app databases."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.chainlit_deploy.stack.plugins.filter.postgres import hba_networks

DATABASES = [{"name": "chainlit", "owner": "chainlit"}, {"name": "thirdparty", "owner": "tp"}]

# As the role writes it, and as the distribution's package leaves it.
WRITTEN = """\
# Ansible managed
local   all             postgres                                peer

# chainlit: its owner, with a password, from loopback and the app networks.
host    chainlit        chainlit        127.0.0.1/32            scram-sha-256
host    chainlit        chainlit        ::1/128                 scram-sha-256
host    chainlit        chainlit        172.17.0.0/16           scram-sha-256
hostssl thirdparty      tp              10.0.0.5/32             scram-sha-256
host    thirdparty      tp              172.17.0.0/16           scram-sha-256 # again
"""
PACKAGE = """\
local   all             all                                     peer
host    all             all             127.0.0.1/32            scram-sha-256
host    replication     all             ::1/128                 scram-sha-256
host    chainlit        someone         192.0.2.0/24            scram-sha-256
host    chainlit        chainlit        198.51.100.0/24         trust
#host   chainlit        chainlit        203.0.113.0/24          scram-sha-256
"""


def test_the_networks_the_role_wrote_for_each_database_owner_once_in_file_order():
    assert hba_networks(WRITTEN, DATABASES) == [
        "127.0.0.1/32",
        "::1/128",
        "172.17.0.0/16",
        "10.0.0.5/32",
    ]


def test_lines_that_are_not_the_roles_are_left_out():
    # "all", another user, trust and commented lines: not a network the role admitted.
    assert hba_networks(PACKAGE, DATABASES) == []
    assert hba_networks(WRITTEN, [{"name": "other", "owner": "other"}]) == []


def test_anything_but_text_is_refused():
    with pytest.raises(AnsibleFilterError, match=r"text of pg_hba\.conf"):
        hba_networks(None, DATABASES)
