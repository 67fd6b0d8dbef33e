"""The test harness's promises: VM-like images, cached by recipe, and an
image archive that an instance can `docker load`."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DISTROS = ("debian12", "debian13", "ubuntu2404")
ARCHIVE = ROOT / ".cache/images/python-base.tar"


def harness(*args: str, root: Path = ROOT) -> str:
    result = subprocess.run(
        [str(root / "scripts/harness"), *args], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def status(root: Path = ROOT) -> dict[str, str]:
    return dict(line.split() for line in harness("status", root=root).splitlines())


@pytest.fixture(scope="module")
def built_status() -> dict[str, str]:
    current = status()
    if set(current.values()) != {"current"}:
        pytest.fail(f"images are not built or stale ({current}): run `make images` first")
    return current


@pytest.mark.parametrize("distro", DISTROS)
def test_instance_image_boots_systemd_and_stops_cleanly(built_status, distro):
    config = json.loads(
        subprocess.run(
            [
                "docker",
                "image",
                "inspect",
                "--format",
                "{{json .Config}}",
                f"chainlit-deploy/instance:{distro}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert config["Cmd"] == ["/lib/systemd/systemd"]
    assert config["StopSignal"] == "SIGRTMIN+3"
    assert "container=docker" in config["Env"]


def test_a_recipe_change_makes_only_that_kind_of_image_stale(built_status, tmp_path):
    copy = tmp_path / "project"
    (copy / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts/harness", copy / "scripts/harness")
    shutil.copytree(ROOT / "harness", copy / "harness")
    # The scenarios' flavour and distro files decide which stack images exist.
    for scenario in (ROOT / "molecule").iterdir():
        for name in ("flavor", "distros"):
            if (scenario / name).is_file():
                (copy / "molecule" / scenario.name).mkdir(parents=True, exist_ok=True)
                shutil.copy2(scenario / name, copy / "molecule" / scenario.name / name)
    assert status(copy) == built_status
    stacks = {name for name in built_status if name.endswith("-stack")}
    assert stacks, "no scenario uses the stack flavour"

    with (copy / "harness/images/instance-setup.sh").open("a") as setup:
        setup.write("# a change to the instance recipe\n")
    changed = status(copy)
    assert {name: state for name, state in changed.items() if "instance" in name} == {
        **{f"chainlit-deploy/instance:{distro}": "stale" for distro in DISTROS},
        # A stack image is built from its instance image.
        **dict.fromkeys(stacks, "stale"),
    }
    assert changed["chainlit-deploy/python-base:bookworm"] == "current"

    (copy / "harness/images/instance-setup.sh").write_text(
        (ROOT / "harness/images/instance-setup.sh").read_text()
    )
    with (copy / "harness/images/stack-packages.txt").open("a") as packages:
        packages.write("# a change to the stack packages\n")
    changed = status(copy)
    assert {name for name, state in changed.items() if state == "stale"} == stacks


def test_python_base_archive_loads_as_the_base_image(built_status):
    with tarfile.open(ARCHIVE) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == ["chainlit-deploy/python-base:bookworm"]
    recipe = (ARCHIVE.parent / "python-base.tar.recipe").read_text().strip()
    label = subprocess.run(
        [
            "docker",
            "image",
            "inspect",
            "--format",
            '{{ index .Config.Labels "io.chainlit-deploy.recipe" }}',
            "chainlit-deploy/python-base:bookworm",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert recipe == label


def test_molecule_matrix_lists_every_scenario_but_the_manual_ones():
    """`make test` runs every scenario on disk except one marked
    molecule/<name>/manual, which is run by name."""
    listed = subprocess.run(
        [str(ROOT / "scripts/molecule-matrix"), "--list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    on_disk = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))
    manual = {p.parent.name for p in (ROOT / "molecule").glob("*/manual")}
    assert listed == [name for name in on_disk if name not in manual]
    assert "docker" in listed
    assert not manual & set(listed)
