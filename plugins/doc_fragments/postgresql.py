# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared option docs of the PostgreSQL modules.

Every server a module talks to is a dict of the same shape (module_utils
_postgres_connection.PEER_SPEC), the one the failsafe.datastores.pg_conn filter builds from the
inventory: ``node`` (the server the module acts on), ``primary``, ``standby`` and the entries of
``nodes``. The docs of that shape are written once, below.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

_CONNECTION = r'''
  %(option)s:
    description: %(description)s
    type: %(type)s
    required: %(required)s%(elements)s
    suboptions:%(name)s
      host:
        description: Host name or address of the server.
        type: str
        required: true
      port:
        description: TCP port of the server.
        type: int
        default: 5432
      user:
        description: Role to connect as; a superuser (or a role with the needed privileges).
        type: str
        default: postgres
      password:
        description: Password of O(%(option)s[].user). Never returned or logged.
        type: str
      db:
        description: Database to connect to.
        type: str
        default: postgres
      connect_timeout:
        description: %(timeout)s
        type: int
        default: %(timeout_default)d
      ssl_mode:
        description: libpq C(sslmode) of the connection.
        type: str
        default: prefer
        choices: [allow, disable, prefer, require, verify-ca, verify-full]
      ca_cert:
        description: CA certificate file for O(%(option)s[].ssl_mode=verify-ca) and O(%(option)s[].ssl_mode=verify-full).
        type: path
      log_file:
        description:
          - The server's log file, as a path on the server's host (inventory C(failsafe_pg_log_file)).
          - Read through SQL (C(pg_read_binary_file), a superuser or C(pg_read_server_files)) to
            find when a standby lost its primary (M(failsafe.datastores.postgresql_failover),
            M(failsafe.datastores.postgresql_promote)); without it C(pg_current_logfile()) is
            used, which needs C(logging_collector).
          - M(failsafe.datastores.postgresql_standby) gives it to C(pg_ctl start -l).
        type: path
'''

_NAME = r'''
      name:
        description: Name of the node in reports (the inventory host name).
        type: str
        required: true'''


def _connection(option, description, required=False, many=False):
    """The docs of one connection option (a dict, or a list of dicts with a name)."""
    text = _CONNECTION % dict(
        option=option, description=description, required="true" if required else "false",
        type="list" if many else "dict", elements="\n    elements: dict" if many else "",
        name=_NAME if many else "",
        timeout=("Seconds to wait for a connection; a node that does not answer in time is down."
                 if many else "Seconds to wait for a connection."),
        timeout_default=3 if many else 5)
    if not many:
        text = text.replace("[]", "")
    return "options:" + text


class ModuleDocFragment(object):

    # Every PostgreSQL module.
    DOCUMENTATION = r'''
options: {}
requirements:
  - psycopg >= 3.1
notes:
  - The server's version must be PostgreSQL 14 or later.
  - Every connection is a dict of the same keys (C(host), C(port), C(user), C(password), C(db),
    C(connect_timeout), C(ssl_mode), C(ca_cert), C(log_file)), as the
    C(failsafe.datastores.pg_conn) filter builds it from the inventory.
  - Errors never end in a Python traceback; the message says what failed, on which server, and
    the state the cluster was left in.
'''

    # The server the module acts on.
    NODE = _connection("node", "Connection to the server the module acts on.", required=True)

    # The (current or old) primary.
    PRIMARY = _connection("primary", "Connection to the primary server.")

    # The primary, when the module cannot work without it.
    PRIMARY_REQUIRED = _connection("primary", "Connection to the primary server.", required=True)

    # The standby.
    STANDBY = _connection("standby", "Connection to the standby server.", required=True)

    # Every node of a cluster, each named.
    NODES = _connection("nodes", "Every node of the cluster, each a connection dict with a C(name).",
                        required=True, many=True)
