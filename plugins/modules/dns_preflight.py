#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: dns_preflight
short_description: Prove that DNS records can be switched, and plan the switch, changing nothing
version_added: 0.3.0
description:
  - Before a failover changes DNS records, checks everything the change needs and says what it
    would change, for an RFC 2136 server (BIND, ...) or a Route 53 hosted zone.
  - "RFC 2136: the server answers and is authoritative for the zone (SOA with the AA flag), the
    TSIG key is known and its secret right (BADKEY and BADSIG are told apart), and the key may
    update each name and type: one update per record whose prerequisite is the record exactly
    as just read and whose only operation deletes a value the prerequisite proves absent, which
    RFC 2136 makes a no-op. NOERROR proves the rights; the zone's serial does not move. A
    failing prerequisite is deliberately not used: RFC 2136 lets a server test prerequisites
    before permissions, so its NXRRSET would prove nothing."
  - "Route 53: the credentials are accepted and the hosted zone and its records can be read.
    Route 53 offers no way to prove the right to change records without changing one, so that
    right is not probed (see docs/dns.md for checking the IAM policy)."
  - Reads the current records and returns RV(changes), the records that differ from the wanted
    ones with their values and TTL before and after. M(failsafe.datastores.dns_update) plans the
    same way (same options) and then makes the change.
  - Every failure says whether the server is down, the key or credentials are wrong, the key
    lacks rights, or the zone is missing. Nothing is ever changed.
  - "On failure the result carries C(error_kind): C(unreachable) (no server answers there),
    C(key) (TSIG key or credentials rejected), C(rights) (a live server refused this name),
    C(zone) (zone missing or not authoritative), C(record) (a record that cannot be handled),
    C(changed) (changed while checked), C(input)."
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.dns
  - failsafe.datastores.dns.PLAN
  - failsafe.datastores.attributes
  - failsafe.datastores.attributes.INFO_MODULE
options:
  check_rights:
    description:
      - Prove the right to update every record (RFC 2136 no-op update). V(false) only reads.
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Check the key and plan the switch to us-west
  failsafe.datastores.dns_preflight:
    provider: rfc2136
    server: 10.0.0.53
    zone: example.com
    key_name: failover
    key_secret: "{{ vault_tsig_secret }}"
    records:
      - name: postgresql
        values: [10.20.1.10]
      - name: api
        values: [10.20.0.80]
  delegate_to: localhost
  register: dns_plan

- name: The same through Route 53
  failsafe.datastores.dns_preflight:
    provider: route53
    zone: example.com
    records: "{{ dns_plan.wanted }}"
  delegate_to: localhost
'''

RETURN = r'''
provider:
  description: The provider, C(rfc2136) or C(route53).
  returned: always
  type: str
zone:
  description:
    - The zone as found. C(name); C(id) (Route 53 hosted zone ID); C(serial) and C(primary)
      (SOA serial and MNAME, RFC 2136); C(nameservers) (NS names, or the hosted zone's
      delegation set).
  returned: success
  type: dict
wanted:
  description: The records asked for, normalised (absolute C(name), C(type), C(values), C(ttl)).
  returned: success
  type: list
  elements: dict
current:
  description: Every wanted record as it is now (C(name), C(type), C(ttl), C(values)); C(values) is empty for a record that does not exist.
  returned: success
  type: list
  elements: dict
changes:
  description:
    - The records that must change, each with C(name), C(type), C(before) (C(ttl), C(values);
      null when the record does not exist) and C(after).
  returned: success
  type: list
  elements: dict
  sample: [{"name": "postgresql.failsafe.lab.", "type": "A",
            "before": {"ttl": 5, "values": ["127.0.1.1"]},
            "after": {"ttl": 5, "values": ["127.0.2.1"]}}]
expected:
  description:
    - Every wanted record as it must be after the switch, changed or not (C(name), C(type),
      C(ttl), C(values)); what M(failsafe.datastores.dns_verify) checks.
  returned: success
  type: list
  elements: dict
summary:
  description: One line per change, C(NAME TYPE OLD -> NEW (ttl OLD -> NEW)), for the operator.
  returned: success
  type: list
  elements: str
  sample: ["postgresql.failsafe.lab. A 127.0.1.1 -> 127.0.2.1 (ttl 5)"]
unchanged:
  description: Absolute names of the wanted records that are already right.
  returned: success
  type: list
  elements: str
rights:
  description: Per record (C(NAME TYPE)), what was proven about the right to change it.
  returned: success
  type: dict
max_old_ttl:
  description:
    - The highest TTL among the records that change (0 when none does), that is how long
      resolvers may go on answering the old values after the switch.
  returned: success
  type: int
timings:
  description: Seconds for C(zone), C(read), C(rights) and C(total).
  returned: always
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer
from ansible_collections.failsafe.datastores.plugins.module_utils._dns import (
    CONNECTION_REQUIRED_IF,
    CONNECTION_REQUIRED_TOGETHER,
    CONNECTION_SPEC,
    PLAN_SPEC,
    DnsError,
    describe_change,
    ensure_libraries,
    plan_from_params,
    provider_from_params,
    record_list,
    wanted_records,
)

STEPS = (("zone", None, "zone"), ("read", "zone", "read"), ("rights", "read", "rights"))


def main():
    argument_spec = dict(CONNECTION_SPEC)
    argument_spec.update(PLAN_SPEC)
    argument_spec.update(check_rights=dict(type="bool", default=True))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=CONNECTION_REQUIRED_IF,
                           required_together=CONNECTION_REQUIRED_TOGETHER)
    ensure_libraries(module)
    params = module.params
    timer = Timer()
    result = dict(changed=False, provider=params["provider"])
    try:
        wanted = wanted_records(params["records"], params["zone"])
        provider = provider_from_params(params)
        zone = provider.zone_info()
        timer.mark("zone")
        wanted, current, changes, unchanged = plan_from_params(provider, wanted, params)
        timer.mark("read")
        rights = {}
        if params["check_rights"]:
            for record in wanted:
                key = (record["name"], record["type"])
                rights["%s %s" % key] = provider.probe(record["name"], record["type"],
                                                       current[key])
        timer.mark("rights")
    except DnsError as exc:
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=str(exc), error_kind=exc.kind, **result)
    result.update(
        zone=zone, wanted=wanted, current=record_list(current), changes=changes,
        expected=[dict(name=e["name"], type=e["type"], **e["after"]) for e in changes + unchanged],
        unchanged=[entry["name"] for entry in unchanged], rights=rights,
        summary=[describe_change(change) for change in changes],
        max_old_ttl=max([c["before"]["ttl"] for c in changes if c["before"]] or [0]),
        timings=timer.report(STEPS))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
