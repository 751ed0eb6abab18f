# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""redis_conn: the connection dict of a Redis node or Sentinel, from its inventory variables."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence

# Inventory variable -> key of the modules' master=/replica=/replica_of=/sentinels[] options.
_FIELDS = (
    ("failsafe_redis_host", "host"),
    ("failsafe_redis_port", "port"),
    ("failsafe_redis_user", "username"),
    ("failsafe_redis_password", "password"),
    ("failsafe_redis_tls", "tls"),
    ("failsafe_redis_ca_cert", "ca_cert"),
    ("failsafe_redis_connect_timeout", "connect_timeout"),
)

# A Sentinel has its own password (often none): the Redis password is not sent to it.
_SENTINEL_FIELDS = (
    ("failsafe_redis_host", "host"),
    ("failsafe_redis_port", "port"),
    ("failsafe_redis_sentinel_password", "password"),
    ("failsafe_redis_tls", "tls"),
    ("failsafe_redis_ca_cert", "ca_cert"),
    ("failsafe_redis_connect_timeout", "connect_timeout"),
)


def redis_conn(host_vars, sentinel=False, with_name=False):
    if not hasattr(host_vars, "get") or is_sequence(host_vars):
        raise AnsibleFilterError("redis_conn expects a host's variables (hostvars[HOST]), got %s"
                                 % type(host_vars).__name__)
    if not host_vars.get("failsafe_redis_host"):
        raise AnsibleFilterError(
            "host %s has no failsafe_redis_host: set it in the inventory"
            % host_vars.get("inventory_hostname", "?"))
    conn = {}
    if with_name:
        conn["name"] = host_vars.get("inventory_hostname")
    for var, key in (_SENTINEL_FIELDS if sentinel else _FIELDS):
        value = host_vars.get(var)
        if value is not None and value != "":
            conn[key] = value
    return conn


class FilterModule(object):
    def filters(self):
        return {"redis_conn": redis_conn}
