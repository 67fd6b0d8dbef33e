"""Which Chainlit releases the collection deploys, and how it reads the one an
app pins (module_utils/chainlit_versions.py, filter chainlit_version_problems)."""

from __future__ import annotations

import pytest
from ansible_collections.chainlit_deploy.stack.plugins.filter.chainlit_app import (
    version_problems,
)
from ansible_collections.chainlit_deploy.stack.plugins.module_utils import chainlit_versions as cv
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.chainlit_schema_spec import (
    required_columns,
)

LOCK = '[[package]]\nname = "chainlit"\nversion = "2.9.6"\n'


@pytest.mark.parametrize("version", ["2.0.601", "2.0.603", "2.5.5", "2.8.5", "2.12.0", "2.12.7"])
def test_releases_of_the_range_are_accepted(version):
    assert cv.problem(version) == ""


@pytest.mark.parametrize(
    ("version", "reason"),
    [
        ("1.3.2", "outside the supported range"),
        ("2.0.5", "outside the supported range"),
        ("2.13.0", "outside the supported range"),
        ("3.0.0", "outside the supported range"),
        ("2.0.6", "login token"),
        ("2.7.1", "no code"),
        ("2.7.0", "google-cloud-storage"),
        ("", "no Chainlit release is pinned"),
    ],
)
def test_releases_outside_the_range_or_broken_are_refused_with_the_reason(version, reason):
    assert reason in cv.problem(version)


def test_every_latest_patch_is_inside_the_range():
    assert all(cv.problem(v) == "" for v in cv.LATEST_PATCH.values())
    assert sorted(cv.LATEST_PATCH, key=cv.parse) == list(cv.LATEST_PATCH)


@pytest.mark.parametrize(
    ("texts", "version", "error"),
    [
        (["chainlit==2.8.5\nasyncpg\n"], "2.8.5", ""),
        (["Chainlit[data] == 2.12.0 ; python_version >= '3.10'\n"], "2.12.0", ""),
        (["# chainlit==1.0\nchainlit===2.5.5\n"], "2.5.5", ""),
        (["chainlit>=2.0\n"], "", "chainlit>=2.0, not one release"),
        (["chainlit\n"], "", "not one release"),
        (["openai\n"], "", "do not name chainlit"),
        (["chainlit>=2\n", LOCK], "2.9.6", ""),
        (["chainlit==2.8.5\n", LOCK], "", "several"),
    ],
)
def test_the_pinned_release_is_read_from_requirements_and_lock_files(texts, version, error):
    found, problem = cv.from_requirements(texts)
    assert found == version
    assert error in problem if error else problem == ""


def test_the_filter_names_the_variable_to_set():
    assert version_problems({"chainlit_version": "2.8.5"}, "") == []
    assert version_problems({"chainlit_version": "", "chainlit_version_error": "x"}, "2.8.5") == []
    (mismatch,) = version_problems({"chainlit_version": "2.8.5"}, "2.12.0")
    assert "chainlit_app_expected_version is 2.12.0" in mismatch and "2.8.5" in mismatch
    (unknown,) = version_problems(
        {"chainlit_version": "", "chainlit_version_error": "the app asks for chainlit>=2"}, ""
    )
    assert "chainlit>=2" in unknown and "chainlit_app_expected_version" in unknown
    (old,) = version_problems({"chainlit_version": "1.3.2"}, "")
    assert "outside the supported range" in old and "requirements.txt" in old


def test_the_columns_required_follow_the_release():
    assert "updatedAt" not in required_columns("2.6.9")["Thread"]
    assert "updatedAt" in required_columns("2.7.2")["Thread"]
    assert "createdAt" not in required_columns("2.9.4")["Step"]
    assert "createdAt" in required_columns("2.9.5")["Step"]
    assert required_columns("") == required_columns("2.12.0")


@pytest.mark.parametrize(
    ("version", "requirements", "added"),
    [
        ("2.0.603", "chainlit==2.0.603\n", ["sniffio"]),
        ("2.5.5", "chainlit==2.5.5\n", ["sniffio"]),
        ("2.5.5", "chainlit==2.5.5\nSniffio==1.3.1\n", []),
        ("2.6.0", "chainlit==2.6.0\n", []),
        ("2.12.0", "chainlit==2.12.0\n", []),
        ("", "chainlit>=2\n", []),
    ],
)
def test_a_release_gets_what_it_imports_but_a_fresh_install_lacks(version, requirements, added):
    found = cv.missing_dependencies(version, requirements)
    assert [item["requirement"] for item in found] == added
    assert all(item["why"] for item in found)
