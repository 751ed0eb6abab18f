# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""dns_conn and dns_records: the DNS modules' options from a DNS host's inventory variables."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible.module_utils.six import string_types

# Inventory variable -> option of the DNS modules, per provider.
_COMMON = (("failsafe_dns_zone", "zone"), ("failsafe_dns_timeout", "timeout"))
_FIELDS = {
    "rfc2136": _COMMON + (
        ("failsafe_dns_server", "server"),
        ("failsafe_dns_port", "port"),
        ("failsafe_dns_tsig_key_name", "key_name"),
        ("failsafe_dns_tsig_key_secret", "key_secret"),
        ("failsafe_dns_tsig_algorithm", "key_algorithm"),
        ("failsafe_dns_protocol", "protocol"),
    ),
    "route53": _COMMON + (
        ("failsafe_route53_zone_id", "hosted_zone_id"),
        ("failsafe_route53_endpoint_url", "endpoint_url"),
        ("failsafe_route53_access_key", "access_key"),
        ("failsafe_route53_secret_key", "secret_key"),
        ("failsafe_route53_session_token", "session_token"),
    ),
}


def _host_vars(host_vars, name):
    if not hasattr(host_vars, "get") or is_sequence(host_vars):
        raise AnsibleFilterError("%s expects a host's variables (hostvars[HOST]), got %s"
                                 % (name, type(host_vars).__name__))
    return host_vars


def dns_conn(host_vars):
    """{provider, zone, server, port, key_*, ...} of a host of the dns group."""
    host_vars = _host_vars(host_vars, "dns_conn")
    host = host_vars.get("inventory_hostname", "?")
    provider = host_vars.get("failsafe_dns_provider") or "rfc2136"
    if provider not in _FIELDS:
        raise AnsibleFilterError("host %s: failsafe_dns_provider=%s is not one of %s"
                                 % (host, provider, ", ".join(sorted(_FIELDS))))
    if not host_vars.get("failsafe_dns_zone"):
        raise AnsibleFilterError("host %s has no failsafe_dns_zone: set it in the inventory" % host)
    if provider == "rfc2136" and not host_vars.get("failsafe_dns_server"):
        raise AnsibleFilterError("host %s has no failsafe_dns_server: set it in the inventory"
                                 % host)
    conn = dict(provider=provider)
    for var, key in _FIELDS[provider]:
        value = host_vars.get(var)
        if value is not None and value != "":
            conn[key] = value
    return conn


def dns_records(mapping, region=None):
    """{name: value | [values] | {type, values, ttl}} -> [{name, values[, type, ttl]}].

    With `region`, `mapping` is {region: {name: ...}} and that region's records are taken.
    """
    if region is not None:
        if not hasattr(mapping, "get") or region not in mapping:
            raise AnsibleFilterError(
                "no DNS records for region %s (failsafe_dns_records has %s): add them to the "
                "inventory" % (region, ", ".join(sorted(mapping)) if hasattr(mapping, "keys")
                               else "nothing"))
        mapping = mapping[region]
    if not hasattr(mapping, "items"):
        raise AnsibleFilterError("dns_records expects a mapping of names to values, got %s"
                                 % type(mapping).__name__)
    records = []
    for name, spec in sorted(mapping.items()):
        record = dict(name=name)
        if isinstance(spec, string_types):
            record["values"] = [spec]
        elif is_sequence(spec):
            record["values"] = [str(v) for v in spec]
        elif hasattr(spec, "get"):
            values = spec.get("values", spec.get("value"))
            if values is None:
                raise AnsibleFilterError("DNS record %s has no values" % name)
            record["values"] = [values] if isinstance(values, string_types) \
                else [str(v) for v in values]
            for key in ("type", "ttl"):
                if spec.get(key) is not None:
                    record[key] = spec[key]
        else:
            raise AnsibleFilterError("DNS record %s: %r is neither a value, a list nor a mapping"
                                     % (name, spec))
        records.append(record)
    return records


class FilterModule(object):
    def filters(self):
        return {"dns_conn": dns_conn, "dns_records": dns_records}
