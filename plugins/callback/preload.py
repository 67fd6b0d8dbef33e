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
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil

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
  - It uses a private method of ansible-core's plugin loader; where that is
    missing, it loads nothing and Ansible works as without it.
version_added: "1.1.0"
requirements:
  - Enable it in ansible.cfg, C(callbacks_enabled = chainlit_deploy.stack.preload).
"""

# Where the connection is docker_api, its import is the dearest one; without
# community.docker there is nothing to import.
with contextlib.suppress(ImportError):
    import ansible_collections.community.docker.plugins.connection.docker_api  # noqa: F401

FILTERS = "ansible_collections.chainlit_deploy.stack.plugins.filter"


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "chainlit_deploy.stack.preload"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_start(self, playbook):
        with contextlib.suppress(Exception):
            from ansible.plugins.loader import filter_loader, test_loader

            filter_loader._ensure_non_collection_wrappers()
            test_loader._ensure_non_collection_wrappers()
        with contextlib.suppress(ImportError):
            package = importlib.import_module(FILTERS)
            for found in pkgutil.iter_modules(package.__path__):
                importlib.import_module(f"{FILTERS}.{found.name}")
