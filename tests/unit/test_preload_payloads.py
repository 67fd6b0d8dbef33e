"""The preload callback keeps each module's payload (the zip Ansible packs
with the module_utils it imports) from one run to the next: a later run uses
it while every file in it is the one that run would pack, and packs anew when
a file changed or the collection is found somewhere else. Real ansible-playbook
runs of a throwaway collection on localhost; what the module prints proves
which code ran."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = """\
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Say the word
      testns.kept.echo:
      register: said
    - name: Print it
      ansible.builtin.debug:
        msg: "word={{ said.word }}"
"""
MODULE = """\
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.testns.kept.plugins.module_utils.words import WORD

AnsibleModule(argument_spec={}).exit_json(changed=False, word=WORD)
"""


def collection(where: Path, word: str) -> Path:
    root = where / "ansible_collections" / "testns" / "kept"
    (root / "plugins" / "modules").mkdir(parents=True)
    (root / "plugins" / "module_utils").mkdir(parents=True)
    (root / "galaxy.yml").write_text("namespace: testns\nname: kept\nversion: 1.0.0\n")
    (root / "plugins" / "modules" / "echo.py").write_text(MODULE)
    (root / "plugins" / "module_utils" / "words.py").write_text(f"WORD = {word!r}\n")
    return root / "plugins" / "module_utils" / "words.py"


def run(tmp_path: Path, collections: Path, debug: bool = False) -> str:
    config = tmp_path / "ansible.cfg"
    config.write_text(
        "[defaults]\n"
        f"collections_path = {collections}:{ROOT / '.ansible' / 'collections'}\n"
        "callbacks_enabled = chainlit_deploy.stack.preload\n"
        "interpreter_python = auto_silent\n"
    )
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    env.update(
        ANSIBLE_CONFIG=str(config),
        ANSIBLE_HOME=str(tmp_path / "home"),
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_NOCOLOR="1",
    )
    if debug:
        env["ANSIBLE_DEBUG"] = "1"
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "play.yml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def kept(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "home" / "chainlit_deploy" / "ansiballz_cache").glob("*.kept"))


def packed(output: str) -> bool:
    """Whether the run packed the module itself (rather than using a kept zip)."""
    lines = [line for line in output.splitlines() if "testns.kept.plugins.modules.echo" in line]
    assert lines, output[-2000:]
    return not any("using cached module" in line for line in lines)


def said(tmp_path: Path, collections: Path) -> tuple[str, bool]:
    """What the module said in a run, and whether that run packed it."""
    output = run(tmp_path, collections, debug=True)
    word = re.search(r"word=(\w+)", output)
    assert word, output[-2000:]
    return word.group(1), packed(output)


@pytest.fixture
def first(tmp_path: Path) -> Path:
    words = collection(tmp_path / "one", "alpha")
    assert "word=alpha" in run(tmp_path, tmp_path / "one")
    assert any(p.name.startswith("ansible_collections.testns.kept.") for p in kept(tmp_path))
    directory = tmp_path / "home" / "chainlit_deploy" / "ansiballz_cache"
    assert directory.stat().st_mode & 0o777 == 0o700
    return words


def test_a_later_run_uses_the_kept_payload(tmp_path: Path, first: Path) -> None:
    assert said(tmp_path, tmp_path / "one") == ("alpha", False)


def test_a_changed_module_util_is_packed_anew(tmp_path: Path, first: Path) -> None:
    first.write_text("WORD = 'bravo'\n")
    assert said(tmp_path, tmp_path / "one") == ("bravo", True)
    # Kept again, and used by the next run.
    assert said(tmp_path, tmp_path / "one") == ("bravo", False)


def test_the_same_collection_found_elsewhere_is_packed_from_there(
    tmp_path: Path, first: Path
) -> None:
    """Another copy of the collection with a file of the same size and time
    but other content: only where the file is found tells them apart."""
    other = collection(tmp_path / "two", "omega")
    for name in ("echo.py", "words.py"):
        source = next((tmp_path / "one").rglob(name))
        twin = next((tmp_path / "two").rglob(name))
        assert source.stat().st_size == twin.stat().st_size
        os.utime(twin, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns))
    assert other.read_text() != first.read_text()
    assert said(tmp_path, tmp_path / "two") == ("omega", True)
    # The first copy's payload is still kept beside the other's and used.
    assert said(tmp_path, tmp_path / "one") == ("alpha", False)


def test_a_payload_kept_in_a_directory_others_can_write_is_not_used(
    tmp_path: Path, first: Path
) -> None:
    directory = tmp_path / "home" / "chainlit_deploy" / "ansiballz_cache"
    directory.chmod(0o777)
    try:
        assert said(tmp_path, tmp_path / "one") == ("alpha", True)
    finally:
        directory.chmod(0o700)


def test_a_broken_kept_file_is_ignored(tmp_path: Path, first: Path) -> None:
    for entry in kept(tmp_path):
        entry.write_bytes(b"not a pickle")
    assert said(tmp_path, tmp_path / "one") == ("alpha", True)
