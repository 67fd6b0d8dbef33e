"""module_utils/wheelhouse: the pins of pip's installation report, and those
it resolved to a source distribution (asked for first, on their own)."""

from __future__ import annotations

from ansible_collections.chainlit_deploy.stack.plugins.module_utils import wheelhouse

FILES = "https://files.pythonhosted.org/packages/00"


def item(name: str, version: str, artifact: str) -> dict:
    """One entry of ``pip install --dry-run --report``, as pip 25 writes it."""
    return {
        "metadata": {"name": name, "version": version},
        "download_info": {"url": f"{FILES}/{artifact}", "archive_info": {"hashes": {}}},
    }


REPORT = {
    "install": [
        item("chainlit", "2.12.0", "chainlit-2.12.0-py3-none-any.whl"),
        item("asyncpg", "0.32.0", "asyncpg-0.32.0-cp313-cp313-manylinux_2_28_x86_64.whl"),
        item("Literal_AI", "0.1.201", "literalai-0.1.201.tar.gz"),
        item("syncer", "2.0.3", "syncer-2.0.3.tar.gz"),
        item("cuid", "0.4", "cuid-0.4.zip"),
    ]
}


def test_pins_are_every_distribution_of_the_report_by_canonical_name():
    assert wheelhouse.pins_from_report(REPORT) == [
        "asyncpg==0.32.0",
        "chainlit==2.12.0",
        "cuid==0.4",
        "literal-ai==0.1.201",
        "syncer==2.0.3",
    ]


def test_source_only_pins_are_those_resolved_to_a_source_distribution():
    only = wheelhouse.source_only_pins(REPORT)
    assert only == ["cuid==0.4", "literal-ai==0.1.201", "syncer==2.0.3"]
    # Spelled as the pins are, so that the module can tell them apart.
    assert set(only) <= set(wheelhouse.pins_from_report(REPORT))


def test_a_report_of_wheels_only_has_no_source_only_pins():
    wheels = {"install": REPORT["install"][:2]}
    assert wheelhouse.source_only_pins(wheels) == []
    assert wheelhouse.source_only_pins({}) == []


def test_the_pins_pip_has_no_wheel_for_are_read_from_its_message():
    stderr = (
        "ERROR: Could not find a version that satisfies the requirement cuid==0.4 "
        "(from versions: 0.2)\nERROR: No matching distribution found for cuid==0.4\n"
    )
    assert wheelhouse.pins_without_wheel(stderr) == ["cuid==0.4"]
