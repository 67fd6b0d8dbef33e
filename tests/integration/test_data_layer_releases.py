"""The data-layer contract for every supported minor line: the latest patch of
each (module_utils/chainlit_versions.py LATEST_PATCH) runs test_data_layer.py,
its own ChainlitDataLayer writing and reading users, threads, every kind of
step, elements and feedback on the schema migrated for its line.

Each release's wheel comes from the package index (cached in
.cache/chainlit-releases) and is put first on the path; its dependencies are
the test environment's (those of the pinned release). The data layer imports
only asyncpg and chainlit's own types, so this exercises each release's SQL,
which is what the schema must fit. Telemetry is switched off in the release's
config.toml (2.0's imports uptrace, which later releases dropped).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.chainlit_versions import (
    LATEST_PATCH,
)
from conftest import ROOT

CACHE = ROOT / ".cache" / "chainlit-releases"
PINNED = "2.12.0"  # the test environment's own release runs test_data_layer.py directly


def release_dir(version: str) -> Path:
    """The release's package tree, downloaded once; pytest-xdist workers wait
    on a lock for the one that fetches it."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{version}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _fetch_release(version)


def _fetch_release(version: str) -> Path:
    target = CACHE / version
    if (target / "chainlit" / "data" / "chainlit_data_layer.py").is_file():
        return target
    wheels = CACHE / "wheels" / version
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
         f"chainlit=={version}", "--dest", str(wheels)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    wheel = next(wheels.glob(f"chainlit-{version}-*.whl"))
    partial = CACHE / f"{version}.part"
    shutil.rmtree(partial, ignore_errors=True)
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(partial)
    partial.rename(target)
    return target


def release_env(version: str, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """An app directory and environment in which ``version`` is the chainlit imported."""
    release = release_dir(version)
    app_root = tmp_path / "app"
    (app_root / ".chainlit").mkdir(parents=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(release),
        "PYTHONDONTWRITEBYTECODE": "1",
        "CHAINLIT_APP_ROOT": str(app_root),
    }
    # The release writes its default config.toml on first import; then
    # telemetry is switched off in it.
    made = subprocess.run(
        [sys.executable, "-c", "import chainlit.config, chainlit; print(chainlit.__version__)"],
        cwd=app_root, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert made.stdout.split()[-1:] == [version], made.stdout + made.stderr
    config = app_root / ".chainlit" / "config.toml"
    config.write_text(
        config.read_text().replace("enable_telemetry = true", "enable_telemetry = false")
    )
    return app_root, env


@pytest.mark.parametrize("version", [v for v in LATEST_PATCH.values() if v != PINNED])
def test_the_data_layer_of_each_supported_line_works_on_the_migrated_schema(
    version: str, tmp_path: Path
) -> None:
    app_root, env = release_env(version, tmp_path)

    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
         str(ROOT / "tests" / "integration" / "test_data_layer.py")],
        cwd=app_root, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout
