"""Faults of PostgreSQL, of the way from the app's container to it, and of the
Docker engine, injected into the running deployment the way real operations
make them (a hardening script, a hand edit of pg_hba.conf, a restore as the
superuser, a reboot that started PostgreSQL before Docker, ...). For each:
chats really break (verify fails), troubleshoot names it with the right id,
the deploy playbook heals it, verify passes again (molecule/fault_injection.py).
Sources of each are in the README's findings catalogue."""

from __future__ import annotations

import pytest
from fault_injection import (
    CAPTURE,
    END_APP_SESSIONS,
    ENV,
    PSQL,
    SAVE_APP,
    UNDO_APP,
    WAIT_APP,
    Fault,
    fault_id,
    findings,
    heal_together,
    inject_diagnose_repair,
    record,
    run_app,
)

DB = f"{PSQL} -d chainlit"
HBA = "$(ls /etc/postgresql/*/main/pg_hba.conf)"
SETTINGS = "$(ls /etc/postgresql/*/main/conf.d/50-ansible.conf)"
APP_SUBNET = "$(docker network inspect chainlit -f '{{(index .IPAM.Config 0).Subnet}}')"

# The app's password, from the .env saved by SAVE_APP (URL-encoded there), set
# again on its role: through psql's stdin, where :'pw' quotes it.
RESTORE_PASSWORD = (
    'pw=$(python3 -c "import urllib.parse as u; '
    "line = [l for l in open('/tmp/env.orig') if l.startswith('DATABASE_URL=')][0]; "
    "print(u.unquote(u.urlsplit(line.split('=', 1)[1].strip()).password))\") && "
    f'echo "ALTER ROLE chainlit PASSWORD :\'pw\'" | {PSQL} -v pw="$pw" >/dev/null'
)

# Faults with an undo go to heal_together in this order: the ones that need a
# session in the app's database come before the one that closes it.
FAULTS = [
    # A hand edit of pg_hba.conf drops the line of the app's network.
    Fault(
        "pg_hba_no_entry",
        f'cp {HBA} /tmp/hba.orig && subnet={APP_SUBNET} && grep -vF "$subnet" {HBA} > /tmp/hba '
        f'&& cat /tmp/hba > {HBA} && {PSQL} -c "SELECT pg_reload_conf()" >/dev/null '
        f"&& {END_APP_SESSIONS}",
        undo=f'cat /tmp/hba.orig > {HBA} && {PSQL} -c "SELECT pg_reload_conf()" >/dev/null',
    ),
    # The schema applied (or restored) as the superuser: the app's role owns nothing.
    Fault(
        "table_privileges_missing",
        f"{DB} -c 'ALTER TABLE \"Thread\" OWNER TO postgres' "
        "-c 'ALTER TABLE \"Step\" OWNER TO postgres'",
        undo=f"{DB} -c 'ALTER TABLE \"Thread\" OWNER TO chainlit' "
        "-c 'ALTER TABLE \"Step\" OWNER TO chainlit'",
    ),
    # An index lost in a hand-made restore: no user can be created any more.
    Fault(
        "user_identifier_unique_missing",
        f"{DB} -c 'DROP INDEX \"User_identifier_key\"'",
        undo=f'{DB} -c \'CREATE UNIQUE INDEX "User_identifier_key" ON "User" (identifier)\'',
    ),
    # A hand-written schema: the bot's replies cannot be saved.
    Fault(
        "schema_step_types_missing",
        f'{DB} -c "ALTER TYPE \\"StepType\\" RENAME VALUE \'assistant_message\' '
        "TO 'assistant_msg'\"",
        undo=f'{DB} -c "ALTER TYPE \\"StepType\\" RENAME VALUE \'assistant_msg\' '
        "TO 'assistant_message'\"",
    ),
    Fault(
        "role_nologin",
        f"{PSQL} -c 'ALTER ROLE chainlit NOLOGIN' && {END_APP_SESSIONS}",
        undo=f"{PSQL} -c 'ALTER ROLE chainlit LOGIN'",
    ),
    # A password policy sets VALID UNTIL: refused like a wrong password.
    Fault(
        "role_password_expired",
        f"{PSQL} -c \"ALTER ROLE chainlit VALID UNTIL '2000-01-01'\" && {END_APP_SESSIONS}",
        undo=f"{PSQL} -c \"ALTER ROLE chainlit VALID UNTIL 'infinity'\"",
    ),
    Fault(
        "connection_limit_reached",
        f"{PSQL} -c 'ALTER ROLE chainlit CONNECTION LIMIT 0' && {END_APP_SESSIONS}",
        undo=f"{PSQL} -c 'ALTER ROLE chainlit CONNECTION LIMIT -1'",
    ),
    # Old chats still show; new ones are never saved.
    Fault(
        "read_only_sessions",
        f"{PSQL} -c 'ALTER ROLE chainlit SET default_transaction_read_only = on' "
        f"&& {END_APP_SESSIONS}",
        undo=f"{PSQL} -c 'ALTER ROLE chainlit RESET default_transaction_read_only' "
        f"&& {END_APP_SESSIONS}",
    ),
    # A hardening script: REVOKE ALL ON DATABASE ... FROM PUBLIC.
    Fault(
        "connect_privilege_revoked",
        f"{PSQL} -c 'REVOKE CONNECT ON DATABASE chainlit FROM PUBLIC, chainlit' "
        f"&& {END_APP_SESSIONS}",
        undo=f"{PSQL} -c 'GRANT CONNECT ON DATABASE chainlit TO PUBLIC, chainlit'",
    ),
    Fault(
        "database_not_accepting_connections",
        f"{PSQL} -c 'ALTER DATABASE chainlit ALLOW_CONNECTIONS false' && {END_APP_SESSIONS}",
        undo=f"{PSQL} -c 'ALTER DATABASE chainlit ALLOW_CONNECTIONS true'",
    ),
    # A password with reserved characters pasted into the URL as it is.
    Fault(
        "database_url_unencoded",
        f"{SAVE_APP} && {PSQL} -c \"ALTER ROLE chainlit PASSWORD 'Pa@ss/w0rd'\" && "
        f"sed -i 's#^\\(DATABASE_URL=postgresql://chainlit:\\)[^@]*@#\\1Pa@ss/w0rd@#' {ENV} && "
        + run_app(),
        # The DBA sets the password back (the one in the saved .env's URL).
        undo=f"{RESTORE_PASSWORD} && {UNDO_APP}",
    ),
    # Inside the container localhost is the container.
    Fault(
        "database_url_loopback",
        f"{SAVE_APP} && sed -i 's#@host.docker.internal:#@localhost:#' {ENV} && " + run_app(),
        undo=UNDO_APP,
    ),
    # The container recreated by hand with a plain `docker run`, as the
    # original analysis does: it lands on Docker's default bridge, whose
    # subnet PostgreSQL does not admit (the app's network alone).
    Fault(
        "pg_hba_no_entry",
        f"{SAVE_APP} && " + run_app(network="bridge"),
        name="container_on_the_default_bridge",
        undo=UNDO_APP,
        together=False,
    ),
    # The container recreated by hand without --add-host host-gateway.
    Fault(
        "database_host_unresolvable",
        f"{SAVE_APP} && {CAPTURE}docker rm -f chainlit >/dev/null && docker run -d --name chainlit "
        f"--env-file {ENV} -p 127.0.0.1:$port:8000 $img",
        undo=UNDO_APP,
    ),
    # The container recreated by hand with --read-only, as hardening guides
    # advise, and no tmpfs: Chainlit cannot make <app root>/.files at import
    # (Chainlit issue #867: "OSError: [Errno 30] Read-only file system:
    # '/app/.files'", a Cloud Run mount made the app directory read-only).
    Fault(
        "app_writes_read_only_root",
        f"{SAVE_APP} && " + run_app(options="--read-only"),
        also={"container_not_running", "container_restarting"},
        settle="sleep 5",
        undo=UNDO_APP,
    ),
    # PostgreSQL listens on the loopback only (its Debian default).
    Fault(
        "database_refused",
        f"cp {SETTINGS} /tmp/settings.orig && "
        f"sed -i \"s/^listen_addresses.*/listen_addresses = 'localhost'/\" {SETTINGS} "
        "&& systemctl restart postgresql",
        # Last of those undone by hand: the restarts end every session.
        undo=f"cat /tmp/settings.orig > {SETTINGS} && systemctl restart postgresql && "
        f"docker restart chainlit >/dev/null && {CAPTURE}{WAIT_APP}",
    ),
    # The app's container removed by hand (`docker rm -f`): with the app's
    # network also named chainlit, an untyped `docker inspect chainlit`
    # answered with the network, as if it were the container.
    Fault(
        "container_missing",
        "docker rm -f chainlit >/dev/null",
        also={"app_not_answering", "proxy_upstream_mismatch"},
    ),
    Fault(
        "docker_engine_down",
        "systemctl stop docker.socket docker",
        also={"app_not_answering", "proxy_upstream_mismatch"},
    ),
]

DIAGNOSED: dict[str, bool] = {}


def test_deploy_then_verify_passes(run_playbook):
    result = run_playbook("verify_stack.yml")
    assert result.returncode == 0, result.stdout
    assert "10 of 10 checks passed" in result.stdout


def test_troubleshoot_finds_nothing_on_the_healthy_stack(run_playbook):
    result = run_playbook("troubleshoot_stack.yml", None, "--check")
    assert result.returncode == 0, result.stdout
    assert findings(result.stdout) == set()


@pytest.mark.parametrize("fault", FAULTS, ids=fault_id)
def test_the_fault_breaks_chats_is_named_and_a_deploy_heals_it(host, run_playbook, fault):
    DIAGNOSED[fault_id(fault)] = False
    DIAGNOSED[fault_id(fault)] = inject_diagnose_repair(host, run_playbook, fault, {})


def test_one_deploy_heals_the_faults_undone_by_hand_all_injected_at_once(host, run_playbook):
    heal_together(host, run_playbook, FAULTS)


def test_every_injected_fault_was_diagnosed():
    summary = record("faults", DIAGNOSED, len(FAULTS))
    assert sum(DIAGNOSED.values()) == len(FAULTS), summary
