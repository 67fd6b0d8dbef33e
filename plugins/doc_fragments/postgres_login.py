"""The PostgreSQL login options every module of the collection takes."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  login_db:
    description: Name of the database to connect to.
    type: str
    aliases: [db]
  login_user:
    description: Role to connect as.
    type: str
    default: postgres
  login_password:
    description: Password of O(login_user).
    type: str
  login_host:
    description:
      - Host to connect to. Without it (and without O(login_unix_socket)) libpq
        uses its default Unix socket.
    type: str
  login_unix_socket:
    description: Directory of the server's Unix socket, e.g. C(/var/run/postgresql).
    type: path
  login_port:
    description: Port of the server (also selects the socket file).
    type: int
    default: 5432
    aliases: [port]
  ssl_mode:
    description: libpq C(sslmode).
    type: str
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
    default: prefer
  ca_cert:
    description:
      - CA certificate (PEM) that verifies the server with O(ssl_mode=verify-ca)
        or C(verify-full).
    type: path
    aliases: [ssl_rootcert]
  connect_timeout:
    description: Seconds to wait for the connection.
    type: int
    default: 10
requirements:
  - psycopg2 (Debian and Ubuntu package C(python3-psycopg2))
"""
