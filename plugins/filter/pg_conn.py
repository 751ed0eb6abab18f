# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_conn: the connection dict of a PostgreSQL node, from its inventory variables."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence

# Inventory variable -> key of the modules' connection options (node=, primary=, standby=,
# nodes=): exactly the keys of module_utils/_postgres_connection.PEER_SPEC.
_FIELDS = (
    ("failsafe_pg_host", "host"),
    ("failsafe_pg_port", "port"),
    ("failsafe_pg_user", "user"),
    ("failsafe_pg_password", "password"),
    ("failsafe_pg_db", "db"),
    ("failsafe_pg_connect_timeout", "connect_timeout"),
    ("failsafe_pg_ssl_mode", "ssl_mode"),
    ("failsafe_pg_ca_cert", "ca_cert"),
    ("failsafe_pg_log_file", "log_file"),
)


def pg_conn(host_vars, with_name=False):
    if not hasattr(host_vars, "get") or is_sequence(host_vars):
        raise AnsibleFilterError("pg_conn expects a host's variables (hostvars[HOST]), got %s"
                                 % type(host_vars).__name__)
    if not host_vars.get("failsafe_pg_host"):
        raise AnsibleFilterError(
            "host %s has no failsafe_pg_host: set it in the inventory"
            % host_vars.get("inventory_hostname", "?"))
    conn = {}
    if with_name:
        conn["name"] = host_vars.get("inventory_hostname")
    for var, key in _FIELDS:
        value = host_vars.get(var)
        if value is not None and value != "":
            conn[key] = value
    return conn


class FilterModule(object):
    def filters(self):
        return {"pg_conn": pg_conn}
