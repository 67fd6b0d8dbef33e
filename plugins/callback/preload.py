"""Load, once in the controller's main process, the plugins every task's
worker would otherwise load again.

Ansible runs each task in a worker process forked from the main process, and
a fork inherits only what the main process has loaded. The main process never
templates a task's conditionals or arguments itself, so the first filter a
worker templates makes it load every builtin filter and test file (core.py,
mathstuff.py and the rest) and then the collection's own filter files: for
every task, including the skipped ones. The main process never loads a
connection plugin either: with community.docker's docker_api (the lab and the
Molecule instances) each worker imported it and the Docker client code behind
it again, about 0.3 s per task on two cores.

Enabled (``callbacks_enabled = chainlit_deploy.stack.preload``), this
callback imports them before the first fork. Measured on the lab with
bench/cpu_by_command: a no-change deploy's 200 workers used 8.0-9.5 s of CPU
before, 5.2-5.7 s after. Importing docker_api before the fork had already
taken a no-change deploy in a Molecule instance from 116 s to 83 s.

It also keeps the modules' payloads from one run to the next. A worker that
runs a module first packs it with every module_utils file it imports (one zip,
found by parsing each file's source); Ansible keeps that zip only in the run's
own temporary directory, so every ansible-playbook packs every module again:
parsing community.docker's or community.postgresql's module_utils costs a
tenth of a second or more per module. This callback copies the zips a run made
to ANSIBLE_HOME (~/.ansible/chainlit_deploy/ansiballz_cache) at its end and
puts the ones still current into the next run's directory before its first
task. A zip is current when each file in it is the file this run would pack:
the same path (each collection found where this run finds it, ansible-core in
the same place) with the same size and modification time. A module edited,
upgraded or found elsewhere is packed anew; modules of a role's or playbook's
library/ directory are never kept.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib
import importlib.util
import io
import os
import pickle
import pkgutil
import sys
import tempfile
import zipfile
from pathlib import Path

import ansible
from ansible import constants as C
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: preload
type: aggregate
short_description: Load the Jinja and connection plugins once, before the task workers fork
description:
  - Ansible forks a worker process for every task and host. A worker inherits
    only what the main process loaded, so each one loads the builtin Jinja
    filter and test plugins, this collection's filters and (with
    community.docker's docker_api connection) the Docker client again.
  - This callback loads them in the main process at the start of each
    playbook, which takes a third off the workers' CPU time. It prints
    nothing and changes no result.
  - It also keeps the payload Ansible packs for each module (the module and
    the module_utils files it imports, in one zip) from one run to the next,
    in C(ANSIBLE_HOME)/chainlit_deploy/ansiballz_cache (private to the user),
    so that a run does not pack again what an earlier run packed. A payload
    is used only while every file in it is found by this run at the same path
    with the same size and modification time; modules of a C(library/)
    directory are never kept. Delete the directory to drop them all.
  - It uses private parts of ansible-core (the plugin loader's, the payload
    cache's); where they are missing, it loads or keeps nothing and Ansible
    works as without it.
version_added: "1.1.0"
requirements:
  - Enable it in ansible.cfg, C(callbacks_enabled = chainlit_deploy.stack.preload).
"""

# Where the connection is docker_api, its import is the dearest one; without
# community.docker there is nothing to import.
with contextlib.suppress(ImportError):
    import ansible_collections.community.docker.plugins.connection.docker_api  # noqa: F401

FILTERS = "ansible_collections.chainlit_deploy.stack.plugins.filter"
CACHE_FORMAT = 1


def _kept_dir() -> Path:
    """Where the payloads are kept between runs (private to this user)."""
    home = Path(C.config.get_config_value("ANSIBLE_HOME")).expanduser()
    return home / "chainlit_deploy" / "ansiballz_cache"


def _run_dir() -> Path:
    """Ansible's payload cache of this run (module_common._find_module_utils)."""
    return Path(C.DEFAULT_LOCAL_TMP) / "ansiballz_cache"


class _Sources:
    """Where this run finds each file of a payload: ansible-core's files in its
    package, a collection's under the root this run finds the collection at."""

    def __init__(self) -> None:
        self.ansible = Path(ansible.__file__).parent
        self.roots: dict[tuple[str, str], Path | None] = {}

    def _root(self, namespace: str, name: str) -> Path | None:
        if (namespace, name) not in self.roots:
            root = None
            with contextlib.suppress(Exception):
                spec = importlib.util.find_spec(f"ansible_collections.{namespace}.{name}")
                locations = list(spec.submodule_search_locations or []) if spec else []
                root = Path(locations[0]) if len(locations) == 1 else None
            self.roots[namespace, name] = root
        return self.roots[namespace, name]

    def path(self, member: str) -> str | None:
        parts = member.split("/")
        if parts[0] == "ansible" and len(parts) > 1:
            return str(self.ansible.joinpath(*parts[1:]))
        if parts[0] == "ansible_collections" and len(parts) > 3:
            root = self._root(parts[1], parts[2])
            return str(root.joinpath(*parts[3:])) if root else None
        return None


def _stat(path: str) -> list[int] | None:
    try:
        found = Path(path).stat()
    except OSError:
        return None
    return [found.st_mtime_ns, found.st_size]


def _record(raw: bytes, sources: _Sources) -> list | None:
    """Each file of a payload with where this run finds it and its size and
    time; None when a file is not the one packed (changed during the run, or
    found nowhere). Ansible writes the packages' __init__.py files itself."""
    cached = pickle.loads(raw)  # module_common._CachedModule
    payload = zipfile.ZipFile(io.BytesIO(base64.b64decode(cached.zip_data)))
    files = []
    for member in payload.namelist():
        path = sources.path(member)
        try:
            same = path is not None and Path(path).read_bytes() == payload.read(member)
        except OSError:
            same = False
        if same:
            files.append([member, path, _stat(path)])
        elif member.endswith("__init__.py"):
            files.append([member, None, None])
        else:
            return None
    return files


def _current(entry: dict, sources: _Sources) -> bool:
    if entry.get("format") != CACHE_FORMAT or entry.get("ansible") != ansible.__version__:
        return False
    if entry.get("python") != list(sys.version_info[:2]):
        return False
    return all(
        path is None or (sources.path(member) == path and _stat(path) == stat)
        for member, path, stat in entry["files"]
    )


def _private(directory: Path) -> bool:
    found = directory.stat()
    return found.st_uid == os.geteuid() and not found.st_mode & 0o077


def _write(path: Path, data: bytes) -> None:
    """Atomically: a reader never sees half a file."""
    handle, part = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    Path(part).replace(path)


def restore_payloads() -> set[str]:
    """The kept payloads still current, into this run's cache; their names."""
    kept, run = _kept_dir(), _run_dir()
    restored: set[str] = set()
    if not kept.is_dir() or not _private(kept):
        return restored
    run.mkdir(parents=True, exist_ok=True)
    sources = _Sources()
    for found in kept.glob("*.kept"):
        with contextlib.suppress(Exception):
            entry = pickle.loads(found.read_bytes())
            name = entry["name"]
            if name not in restored and _current(entry, sources):
                _write(run / name, entry["payload"])
                restored.add(name)
    return restored


def keep_payloads(restored: set[str]) -> int:
    """The payloads this run packed, kept for the next runs; how many."""
    kept, run = _kept_dir(), _run_dir()
    if not run.is_dir():
        return 0
    kept.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not _private(kept):
        return 0
    sources, count = _Sources(), 0
    for payload in run.iterdir():
        name = payload.name
        if name in restored or name.startswith(("ansible.legacy.", ".")):
            continue
        if name.endswith((".lock", "-part")):
            continue
        with contextlib.suppress(Exception):
            raw = payload.read_bytes()
            files = _record(raw, sources)
            if files is None:
                continue
            entry = {
                "format": CACHE_FORMAT,
                "ansible": ansible.__version__,
                "python": list(sys.version_info[:2]),
                "name": name,
                "files": files,
                "payload": raw,
            }
            # One file per module and place it is found at: two checkouts
            # (or collection paths) keep theirs side by side.
            where = hashlib.sha256(repr(sorted(f[1] or "" for f in files)).encode()).hexdigest()
            _write(kept / f"{name}@{where[:16]}.kept", pickle.dumps(entry))
            count += 1
    return count


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "chainlit_deploy.stack.preload"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._restored: set[str] = set()

    def v2_playbook_on_start(self, playbook):
        with contextlib.suppress(Exception):
            self._restored = restore_payloads()
        with contextlib.suppress(Exception):
            from ansible.plugins.loader import filter_loader, test_loader

            filter_loader._ensure_non_collection_wrappers()
            test_loader._ensure_non_collection_wrappers()
        with contextlib.suppress(ImportError):
            package = importlib.import_module(FILTERS)
            for found in pkgutil.iter_modules(package.__path__):
                importlib.import_module(f"{FILTERS}.{found.name}")

    def v2_playbook_on_stats(self, stats):
        with contextlib.suppress(Exception):
            keep_payloads(self._restored)
