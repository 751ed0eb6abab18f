# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared option docs of the PostgreSQL modules.

Every server a module talks to is a dict of the same shape (module_utils
_postgres_connection.PEER_SPEC), the one the failsafe.datastores.pg_conn filter builds from the
inventory: ``node`` (the server the module acts on), ``primary``, ``standby`` and the entries of
``nodes``. ansible-test reads these as string literals, so each variant is spelled out;
tests/unit/test_docs.py checks every one against PEER_SPEC.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


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
    NODE = r'''
options:
  node:
    description: Connection to the server the module acts on.
    type: dict
    required: true
    suboptions:
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
        description: Password of O(node.user). Never returned or logged.
        type: str
      db:
        description: Database to connect to.
        type: str
        default: postgres
      connect_timeout:
        description: Seconds to wait for a connection.
        type: int
        default: 5
      ssl_mode:
        description: libpq C(sslmode) of the connection.
        type: str
        default: prefer
        choices: [allow, disable, prefer, require, verify-ca, verify-full]
      ca_cert:
        description: CA certificate file for O(node.ssl_mode=verify-ca) and O(node.ssl_mode=verify-full).
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

    # The (current or old) primary.
    PRIMARY = r'''
options:
  primary:
    description: Connection to the primary server.
    type: dict
    required: false
    suboptions:
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
        description: Password of O(primary.user). Never returned or logged.
        type: str
      db:
        description: Database to connect to.
        type: str
        default: postgres
      connect_timeout:
        description: Seconds to wait for a connection.
        type: int
        default: 5
      ssl_mode:
        description: libpq C(sslmode) of the connection.
        type: str
        default: prefer
        choices: [allow, disable, prefer, require, verify-ca, verify-full]
      ca_cert:
        description: CA certificate file for O(primary.ssl_mode=verify-ca) and O(primary.ssl_mode=verify-full).
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

    # The primary, when the module cannot work without it.
    PRIMARY_REQUIRED = r'''
options:
  primary:
    description: Connection to the primary server.
    type: dict
    required: true
    suboptions:
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
        description: Password of O(primary.user). Never returned or logged.
        type: str
      db:
        description: Database to connect to.
        type: str
        default: postgres
      connect_timeout:
        description: Seconds to wait for a connection.
        type: int
        default: 5
      ssl_mode:
        description: libpq C(sslmode) of the connection.
        type: str
        default: prefer
        choices: [allow, disable, prefer, require, verify-ca, verify-full]
      ca_cert:
        description: CA certificate file for O(primary.ssl_mode=verify-ca) and O(primary.ssl_mode=verify-full).
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

    # The standby.
    STANDBY = r'''
options:
  standby:
    description: Connection to the standby server.
    type: dict
    required: true
    suboptions:
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
        description: Password of O(standby.user). Never returned or logged.
        type: str
      db:
        description: Database to connect to.
        type: str
        default: postgres
      connect_timeout:
        description: Seconds to wait for a connection.
        type: int
        default: 5
      ssl_mode:
        description: libpq C(sslmode) of the connection.
        type: str
        default: prefer
        choices: [allow, disable, prefer, require, verify-ca, verify-full]
      ca_cert:
        description: CA certificate file for O(standby.ssl_mode=verify-ca) and O(standby.ssl_mode=verify-full).
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

    # Every node of a cluster, each named.
    NODES = r'''
options:
  nodes:
    description: Every node of the cluster, each a connection dict with a C(name).
    type: list
    required: true
    elements: dict
    suboptions:
      name:
        description: Name of the node in reports (the inventory host name).
        type: str
        required: true
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
        description: Password of O(nodes[].user). Never returned or logged.
        type: str
      db:
        description: Database to connect to.
        type: str
        default: postgres
      connect_timeout:
        description: Seconds to wait for a connection; a node that does not answer in time is down.
        type: int
        default: 3
      ssl_mode:
        description: libpq C(sslmode) of the connection.
        type: str
        default: prefer
        choices: [allow, disable, prefer, require, verify-ca, verify-full]
      ca_cert:
        description: CA certificate file for O(nodes[].ssl_mode=verify-ca) and O(nodes[].ssl_mode=verify-full).
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

    # Connection to the database data is read from.
    SOURCE = r'''
options:
  source:
    description: Connection to the database data is read from; O(source.db) names it.
    type: dict
    required: true
    suboptions:
      host:
        description: Host name or address of the server.
        type: str
        required: true
      port:
        description: TCP port of the server.
        type: int
        default: 5432
      user:
        description: Role to connect as; it must read what is copied.
        type: str
        default: postgres
      password:
        description: Password of O(source.user). Never returned or logged.
        type: str
      db:
        description: Database to connect to.
        type: str
        default: postgres
      connect_timeout:
        description: Seconds to wait for a connection.
        type: int
        default: 5
      ssl_mode:
        description: libpq C(sslmode).
        type: str
        default: prefer
        choices: [allow, disable, prefer, require, verify-ca, verify-full]
      ca_cert:
        description: CA certificate file for O(source.ssl_mode=verify-ca) and O(source.ssl_mode=verify-full).
        type: path
      log_file:
        description: The server's log file; not used here, accepted so that the C(pg_conn) dict passes unchanged.
        type: path
'''

    # Connection to the live database data is written to.
    TARGET = r'''
options:
  target:
    description: Connection to the live database data is written to; O(target.db) names it.
    type: dict
    required: true
    suboptions:
      host:
        description: Host name or address of the server.
        type: str
        required: true
      port:
        description: TCP port of the server.
        type: int
        default: 5432
      user:
        description: Role to connect as; it must read and write what is copied.
        type: str
        default: postgres
      password:
        description: Password of O(target.user). Never returned or logged.
        type: str
      db:
        description: Database to connect to.
        type: str
        default: postgres
      connect_timeout:
        description: Seconds to wait for a connection.
        type: int
        default: 5
      ssl_mode:
        description: libpq C(sslmode).
        type: str
        default: prefer
        choices: [allow, disable, prefer, require, verify-ca, verify-full]
      ca_cert:
        description: CA certificate file for O(target.ssl_mode=verify-ca) and O(target.ssl_mode=verify-full).
        type: path
      log_file:
        description: The server's log file; not used here, accepted so that the C(pg_conn) dict passes unchanged.
        type: path
'''
