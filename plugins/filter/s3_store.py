# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""s3_store: the `store` option of the backup modules, from the failsafe_s3_* variables."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence

# Inventory variable -> key of the modules' store= option.
_FIELDS = (
    ("failsafe_s3_endpoint_url", "endpoint_url"),
    ("failsafe_s3_region", "region"),
    ("failsafe_s3_bucket", "bucket"),
    ("failsafe_s3_prefix", "prefix"),
    ("failsafe_s3_access_key", "access_key"),
    ("failsafe_s3_secret_key", "secret_key"),
    ("failsafe_s3_ca_cert", "ca_cert"),
    ("failsafe_s3_sign_payload", "sign_payload"),
)


def s3_store(host_vars):
    if not hasattr(host_vars, "get") or is_sequence(host_vars):
        raise AnsibleFilterError("s3_store expects a host's variables (hostvars[HOST] or vars), "
                                 "got %s" % type(host_vars).__name__)
    if not host_vars.get("failsafe_s3_bucket"):
        raise AnsibleFilterError(
            "no failsafe_s3_bucket for %s: set the failsafe_s3_* variables of the backup store "
            "in the inventory (docs/inventory.md, Backups)"
            % host_vars.get("inventory_hostname", "this host"))
    store = {}
    for var, key in _FIELDS:
        value = host_vars.get(var)
        if value is not None and value != "":
            store[key] = value
    return store


class FilterModule(object):
    def filters(self):
        return {"s3_store": s3_store}
