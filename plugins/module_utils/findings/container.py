"""Findings about the app's container: missing, not running, restarting,
unhealthy, or running without answering."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings.catalogue import (
    entry,
    make,
    run,
)
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings.evidence import (
    answer,
    one_line,
    published,
)

CONCERN = "container"
DEPLOY = run("deploy")

entry(
    "docker_engine_down",
    CONCERN,
    "502 Bad Gateway; `docker ps` says 'Cannot connect to the Docker daemon'",
    "The Docker engine is stopped (or failed to start): the app's container is not running, "
    "and nothing else about it can be inspected until the engine is back.",
    f"`systemctl start docker` (`journalctl -u docker` says why it stopped); {DEPLOY} starts it "
    "too. The app's container restarts with the engine (restart policy unless-stopped).",
)
entry(
    "container_missing",
    CONCERN,
    "nothing answers; `docker ps -a` has no container of the app",
    "The app was never deployed here, or its container was removed.",
    f"Run {DEPLOY} (check troubleshoot_app_name if it has another name).",
)
entry(
    "container_restarting",
    CONCERN,
    "502 Bad Gateway now and then; the container's restart count grows",
    "The app exits soon after it starts and Docker's restart policy starts it again. The other "
    "findings usually name why.",
    f"Fix the cause the other findings name (`docker logs {{name}}` shows the error), then "
    f"run {DEPLOY}.",
)
entry(
    "container_not_running",
    CONCERN,
    "502 Bad Gateway; the container is exited",
    "It was stopped by hand, or it crashed and its restart policy does not restart it.",
    f"Read `docker logs {{name}}`, fix what it names, then run {DEPLOY} (or "
    "`docker start {name}`).",
)
entry(
    "app_writes_read_only_root",
    CONCERN,
    "the container stops, restarts or turns unhealthy; its log says 'Read-only file system'",
    "The container's root filesystem is read-only and the app writes where nothing writable is "
    "mounted: Chainlit makes <app root>/.files when it starts, and writes "
    ".chainlit/config.toml, its translations and chainlit.md when the image lacks them.",
    f"Run {DEPLOY}: it mounts tmpfs on /tmp and on the app root's .files, and runs an image "
    "that lacks Chainlit's files writable; list any other path the app writes in "
    "chainlit_app_writable_paths. A container of your own: mount a tmpfs on the path the log "
    "names (compose: `tmpfs: [<path>]`), or drop `read_only`.",
)
entry(
    "container_unhealthy",
    CONCERN,
    "`docker ps` shows the app (unhealthy)",
    "Its health check fails: the app hangs, crashed inside the container or does not listen "
    "where the check looks.",
    f"Read `docker logs {{name}}`; fix what it names, then run {DEPLOY}.",
)
entry(
    "app_not_answering",
    CONCERN,
    "502 Bad Gateway or no answer, while the container runs",
    "The container runs but the app does not answer on the port it publishes: it does not "
    "listen on the container's port, serves another root path (chainlit_app_root_path), or "
    "hangs.",
    f"Read `docker logs {{name}}`; run {DEPLOY}, which releases the app again as configured.",
)


def findings(facts: Mapping[str, Any], logs: Mapping[str, str]) -> list[dict[str, str]]:
    name = str(facts.get("container_name", "chainlit"))
    engine_error = facts.get("engine_error")
    if engine_error:
        return [make("docker_engine_down", f"the Docker engine does not answer: {engine_error}")]
    container = facts.get("container")
    if not container:
        return [make("container_missing", f"no container named {name} on this host", name=name)]
    state = container.get("State") or {}
    health = (state.get("Health") or {}).get("Status", "")
    restarts = int(container.get("RestartCount") or 0)
    last_log = logs.get("last_error", "")
    log_note = f"Its log says: {last_log}." if last_log else ""
    read_only = logs.get("app_writes_read_only_root", "")
    # Named beside the container's state, which it explains.
    written = (
        [make("app_writes_read_only_root", f"container {name}'s log says: {read_only}", name=name)]
        if read_only
        else []
    )
    if state.get("Restarting") or state.get("Status") == "restarting" or restarts > 0:
        return [
            make(
                "container_restarting",
                f"container {name} is {state.get('Status', 'unknown')} and has restarted "
                f"{restarts} times (last exit code {state.get('ExitCode', '?')})",
                log_note,
                name=name,
            ),
            *written,
        ]
    if not state.get("Running"):
        return [
            make(
                "container_not_running",
                f"container {name} is {state.get('Status', 'unknown')} "
                f"(exit code {state.get('ExitCode', '?')}, "
                f"finished {state.get('FinishedAt', '?')})",
                log_note,
                name=name,
            ),
            *written,
        ]
    if health == "unhealthy":
        checks = (state.get("Health") or {}).get("Log") or [{}]
        output = one_line(checks[-1].get("Output", ""))[-200:]
        test = " ".join((container.get("Config") or {}).get("Healthcheck", {}).get("Test") or [])
        answers = (facts.get("direct_health") or facts.get("health") or {}).get("status") == 200
        return [
            make(
                "container_unhealthy",
                f"container {name} is running but Docker reports it unhealthy "
                f"({(state.get('Health') or {}).get('FailingStreak', '?')} failed checks in a "
                f"row; check: {test or 'the image HEALTHCHECK'}"
                + (f"; last output: {output}" if output else "")
                + ")",
                "Yet GET /health answers 200 from the host, so the check itself is wrong."
                if answers
                else "",
                name=name,
            ),
            *written,
        ]
    direct = facts.get("direct_health") or {}
    probe = direct or facts.get("health") or {}
    if health != "starting" and probe and probe.get("status") != 200:
        ports = published(container)
        where = ", ".join(f"{p['ip']}:{p['port']}->{p['container_port']}" for p in ports)
        return [
            make(
                "app_not_answering",
                f"GET {probe.get('url', '/health')} from the host {answer(probe)}; the container "
                + (f"publishes {where}" if where else "publishes no port"),
                ""
                if direct
                else "The app is not reachable where it is published: wrong port or address "
                "(chainlit_app_port, chainlit_app_listen_address, root path), or the container "
                "was created without publishing its port.",
                name=name,
            )
        ]
    return []
