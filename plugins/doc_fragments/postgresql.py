# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared option docs of the PostgreSQL modules."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    # The node the module acts on (flat login_* options).
    DOCUMENTATION = r'''
options:
  login_host:
    description: Host name or address of the server the module acts on.
    type: str
    required: true
  login_port:
    description: TCP port of that server.
    type: int
    default: 5432
  login_user:
    description: Role to connect as; a superuser (or a role with the needed privileges).
    type: str
    default: postgres
  login_password:
    description: Password of O(login_user). Never returned or logged.
    type: str
  login_db:
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
    description: CA certificate file for O(ssl_mode=verify-ca) and O(ssl_mode=verify-full).
    type: path
requirements:
  - psycopg >= 3.1
notes:
  - The server's version must be PostgreSQL 14 or later.
'''

    # The (current or old) primary, as a dict.
    PRIMARY = r'''
options:
  primary:
    description: Connection to the primary server.
    type: dict
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
        description: libpq C(sslmode).
        type: str
        default: prefer
        choices: [allow, disable, prefer, require, verify-ca, verify-full]
      ca_cert:
        description: CA certificate file for O(primary.ssl_mode=verify-ca) and O(primary.ssl_mode=verify-full).
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
        description: libpq C(sslmode).
        type: str
        default: prefer
        choices: [allow, disable, prefer, require, verify-ca, verify-full]
      ca_cert:
        description: CA certificate file for O(primary.ssl_mode=verify-ca) and O(primary.ssl_mode=verify-full).
        type: path
'''

    # The standby, as a dict.
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
        description: libpq C(sslmode).
        type: str
        default: prefer
        choices: [allow, disable, prefer, require, verify-ca, verify-full]
      ca_cert:
        description: CA certificate file for O(standby.ssl_mode=verify-ca) and O(standby.ssl_mode=verify-full).
        type: path
'''
