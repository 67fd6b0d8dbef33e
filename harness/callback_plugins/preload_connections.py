"""Import the Docker connection plugins once, in the controller's main process.

Ansible runs each task in a worker process forked from the main process. The
main process never loads connection plugins itself, so every worker imports
``community.docker.docker_api`` (and the Docker SDK code behind it) again:
about 0.3 s per task on two cores, for every task, including the ones that
never touch the host (assert, set_fact, argument specs). A fork inherits the
modules already imported, so importing the plugin here, when the callback is
loaded, removes that cost: a no-change deploy of the whole stack in a Molecule
instance (molecule/faults converge.yml, timed with nothing else running) went
from 116 s to 83 s. The lab and the Molecule instances are
reached with docker_api; nothing else changes. Test and lab tooling: not part
of the built collection (galaxy.yml build_ignore: harness).
"""

from __future__ import annotations

import contextlib

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: preload_connections
type: aggregate
short_description: Import the docker_api connection plugin before workers fork
description:
  - Imports community.docker's docker_api connection plugin in the main
    process, so that forked workers do not import it for every task.
requirements:
  - community.docker
"""

# Without community.docker there is nothing to preload.
with contextlib.suppress(ImportError):
    import ansible_collections.community.docker.plugins.connection.docker_api  # noqa: F401


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "preload_connections"
    CALLBACK_NEEDS_ENABLED = True
