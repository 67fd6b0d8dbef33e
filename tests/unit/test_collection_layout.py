"""The repository as a collection: one home per plugin, no symlink, the
README's findings catalogue equal to the code's, and the CI files offered to
operators in step with the collection."""

from __future__ import annotations

import ast
import re
import subprocess

import pytest
import yaml
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings import (
    catalogue,
    classify,
    compose,
)
from conftest import ROOT

PLUGIN_DIRS = ("library", "filter_plugins", "lookup_plugins", "module_utils", "action_plugins")


def test_no_symlink_is_committed():
    staged = subprocess.run(
        ["git", "ls-files", "-s"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    links = [line.split("\t", 1)[1] for line in staged.splitlines() if line.startswith("120000")]
    assert links == []


def test_no_symlink_in_the_work_tree_outside_ignored_dirs():
    ignored = {".git", ".venv", ".ansible", ".cache", "node_modules"}
    links = [
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("*")
        if path.is_symlink() and not ignored.intersection(path.relative_to(ROOT).parts)
    ]
    assert links == []


def test_roles_carry_no_plugins_of_their_own():
    found = [
        str(d.relative_to(ROOT)) for d in (ROOT / "roles").glob("*/*") if d.name in PLUGIN_DIRS
    ]
    assert found == [], "plugins live once, under plugins/"


def test_each_plugin_exists_once():
    kinds = ("modules", "filter", "lookup")
    names = [p.stem for kind in kinds for p in (ROOT / "plugins" / kind).glob("*.py")]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    shared = [p.stem for p in (ROOT / "plugins/module_utils").rglob("*.py")]
    assert len(shared) == len(set(shared)), sorted(n for n in shared if shared.count(n) > 1)


def test_roles_never_reach_outside_themselves():
    offenders = []
    for path in (ROOT / "roles").rglob("*.yml"):
        text = path.read_text()
        if re.search(r"role_path\s*~?\s*['\"]?/\.\.|playbook_dir\s*~?\s*['\"]?/\.\.", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_the_readme_catalogue_is_the_code_catalogue():
    readme = (ROOT / "README.md").read_text()
    assert catalogue.markdown_table(classify.CONCERNS) in readme
    assert catalogue.markdown_table((compose.CONCERN,)) in readme
    assert len(catalogue.ENTRIES) >= 30


def test_every_fix_names_playbooks_as_users_run_them():
    for item in catalogue.ENTRIES.values():
        assert "playbooks/" not in item.fix + item.cause, item.id


def test_the_ci_workflow_for_operators_runs_playbooks_that_exist():
    workflow = yaml.safe_load((ROOT / "docs/ci/github-actions.yml").read_text())
    assert set(workflow["jobs"]) == {"lint", "molecule"}
    commands = "\n".join(
        step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]
    )
    for playbook in re.findall(r"for playbook in ([a-z ]+);", commands)[0].split():
        assert (ROOT / "playbooks" / f"{playbook}.yml").is_file(), playbook
    assert "ansible-lint" in commands
    assert "molecule test" in commands
    scenario = ROOT / "docs/ci/molecule/default"
    for name in ("converge.yml", "verify.yml"):
        imported = yaml.safe_load((scenario / name).read_text())[0][
            "ansible.builtin.import_playbook"
        ]
        assert imported.startswith("chainlit_deploy.stack.")
        assert (ROOT / "playbooks" / f"{imported.rsplit('.', 1)[1]}.yml").is_file()
    molecule = yaml.safe_load((scenario / "molecule.yml").read_text())
    assert set(molecule["platforms"][0]["groups"]) == {"chainlit", "postgres"}


@pytest.mark.parametrize(
    "plugin",
    sorted(ROOT.glob("plugins/modules/*.py")) + sorted(ROOT.glob("plugins/lookup/*.py")),
    ids=lambda p: p.name,
)
def test_every_plugin_documents_itself_in_valid_yaml(plugin):
    """ansible-doc, the sanity tests and Galaxy read these; a colon in a plain
    sentence silently breaks them."""
    tree = ast.parse(plugin.read_text())
    docs = {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id in ("DOCUMENTATION", "EXAMPLES", "RETURN")
    }
    assert "DOCUMENTATION" in docs
    for name, text in docs.items():
        assert yaml.safe_load(text) is not None, name
    assert yaml.safe_load(docs["DOCUMENTATION"])["short_description"]
