"""The fleet's checks before any host changes: one auth secret across the app
hosts (named by host, never shown), and every app host's address admitted by
its database host's pg_hba networks."""

from __future__ import annotations

import pytest
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.fleet import (
    address_allowed,
    auth_secret_problems,
    database_admission_problems,
    fleet_problems,
)


@pytest.mark.parametrize(
    ("address", "networks", "allowed"),
    [
        ("10.0.0.11", ["10.0.0.11/32"], True),
        ("10.0.0.11", ["10.0.0.0/24"], True),
        ("10.0.0.11", ["10.0.0.12/32", "172.17.0.0/16"], False),
        ("10.0.0.11", ["", "not-a-network"], False),
        ("fd00::11", ["fd00::/64"], True),
        ("not-an-address", ["0.0.0.0/0"], False),
        ("10.0.0.11", [], False),
    ],
)
def test_address_allowed(address, networks, allowed):
    assert address_allowed(address, networks) is allowed


def test_one_secret_across_the_app_hosts_is_fine():
    assert auth_secret_problems({"app1": "d1", "app2": "d1"}) == []
    assert auth_secret_problems({"app1": "d1"}) == []
    assert auth_secret_problems({}) == []


def test_differing_secrets_name_the_hosts_and_never_the_digests():
    problems = auth_secret_problems({"app1": "digest-a", "app2": "digest-b", "app3": "digest-a"})
    assert len(problems) == 1
    assert "chainlit_app_auth_secret differs" in problems[0]
    assert "app1, app3; app2" in problems[0]
    assert "group_vars/chainlit" in problems[0]
    assert "digest" not in problems[0]


def test_an_app_host_missing_from_pg_hba_is_named_with_the_fix():
    problems = database_admission_problems(
        {
            "app1": {"database_host": "db", "address": "10.0.0.11"},
            "app2": {"database_host": "db", "address": "10.0.0.12"},
        },
        {"db": ["10.0.0.11/32", ""]},
    )
    assert problems == [
        "app host app2 reaches the database host db from 10.0.0.12, which PostgreSQL would "
        "refuse: postgres_app_networks of db is [10.0.0.11/32]. Add 10.0.0.12/32 (or its "
        "private network) to postgres_app_networks in db's group_vars (group postgres)."
    ]


def test_same_host_and_managed_databases_are_not_checked_here():
    # Same host (through the Docker bridge: no address), and a database that
    # is no host of group postgres (managed): the roles check those.
    assert (
        database_admission_problems(
            {
                "app1": {"database_host": "app1", "address": ""},
                "app2": {"database_host": "rds.example.com", "address": "10.0.0.12"},
            },
            {"app1": ["172.17.0.0/16"]},
        )
        == []
    )


def test_fleet_problems_lists_both_kinds():
    problems = fleet_problems(
        {
            "app1": {"auth_secret_digest": "a", "database_host": "db", "address": "10.0.0.11"},
            "app2": {"auth_secret_digest": "b", "database_host": "db", "address": "10.0.0.99"},
        },
        {"db": ["10.0.0.11/32"]},
    )
    assert len(problems) == 2
    assert problems[0].startswith("chainlit_app_auth_secret differs")
    assert problems[1].startswith("app host app2 reaches the database host db from 10.0.0.99")
