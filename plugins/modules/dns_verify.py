#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: dns_verify
short_description: Wait until every authoritative server of a zone answers the new records
version_added: 0.3.0
description:
  - After a DNS switch, asks every authoritative server of the zone directly (no resolver, no
    cache, recursion off) for every record until all of them answer the wanted values and TTL,
    and reports how long that took. One server that still answers the old value, answers
    without authority or does not answer at all fails the task after O(timeout), with what each
    server answered.
  - "RFC 2136: the servers are the primary (O(server)), plus the zone's NS servers as the primary
    lists them, asked on O(port); with O(nameservers), those instead, and every NS server of the
    zone must be among them (a server nobody checks could still answer the old address)."
  - "Route 53: waits until Route 53 reports the changes O(change_ids) C(INSYNC), reads the
    records back through the API until they are the wanted ones, and, with
    O(query_nameservers=true), asks the hosted zone's four name servers directly on port 53. A
    Route 53 emulator serves no DNS: set O(query_nameservers=false) there."
  - Only reads. M(failsafe.datastores.dns_update) waits the same way (O(failsafe.datastores.dns_update#module:wait))
    right after its change; this module is for checking again later, or after a change made
    by other means.
  - "On failure the result carries C(error_kind): C(unreachable) (no server answers there),
    C(key) (TSIG key or credentials rejected), C(rights) (a live server refused this name),
    C(zone) (zone missing or not authoritative), C(record) (a record that cannot be handled),
    C(changed) (changed while checked), C(input), C(disagree) (servers still differ at the timeout), C(pending) (Route 53 not INSYNC)."
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.dns
  - failsafe.datastores.dns.WAIT
  - failsafe.datastores.attributes
  - failsafe.datastores.attributes.INFO_MODULE
options:
  records:
    description:
      - The records as they must be answered, as RV(failsafe.datastores.dns_preflight#module:changes)
        returns them (C(name), C(type), C(after) with C(values) and C(ttl)) or as C(name),
        C(type), C(values) and C(ttl) directly. Without a TTL, only the values are compared.
    type: list
    elements: dict
    required: true
  change_ids:
    description:
      - Route 53 only. Change IDs that must become C(INSYNC)
        (RV(failsafe.datastores.dns_update#module:change_id), or C(amazon.aws.route53)'s C(wait_id)).
    type: list
    elements: str
    default: []
  interval:
    description: Seconds between two rounds of questions.
    type: float
    default: 0.2
'''

EXAMPLES = r'''
- name: Wait until every authoritative server answers the new addresses
  failsafe.datastores.dns_verify:
    provider: rfc2136
    server: 10.0.0.53
    zone: example.com
    records: "{{ dns_plan.changes }}"
    wait_timeout: 120
  delegate_to: localhost
  register: dns_verified

- name: Route 53, read back through the API only (an emulator serves no DNS)
  failsafe.datastores.dns_verify:
    provider: route53
    zone: example.com
    endpoint_url: http://127.0.0.1:5000
    records: [{name: api, type: A, values: [10.20.0.80], ttl: 60}]
    query_nameservers: false
  delegate_to: localhost
'''

RETURN = r'''
agreed:
  description: Whether every server answered every record as wanted (always true on success).
  returned: always
  type: bool
seconds_to_agree:
  description: Seconds from the start until the last server answered the new values; null when they never did.
  returned: always
  type: float
servers:
  description:
    - Per server asked (C(server); C(api) for the Route 53 API read-back), C(answers) (per
      C(NAME TYPE), the last answer as text), C(serial) (SOA serial, RFC 2136), C(agreed_after)
      (seconds, null while it differed).
  returned: always
  type: list
  elements: dict
records:
  description: The records checked (C(name), C(type), C(values), C(ttl)).
  returned: always
  type: list
  elements: dict
timings:
  description: Seconds for C(insync) (Route 53 changes in sync), C(agree) and C(total).
  returned: always
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer
from ansible_collections.failsafe.datastores.plugins.module_utils._dns import (
    CONNECTION_REQUIRED_IF,
    CONNECTION_REQUIRED_TOGETHER,
    CONNECTION_SPEC,
    WAIT_SPEC,
    Agreement,
    DnsError,
    absolute_name,
    canonical_values,
    ensure_libraries,
    infer_type,
    provider_from_params,
)

STEPS = (("insync", None, "insync"), ("agree", "insync", "agreed"))


def expected_records(records, zone):
    """[{name, type, after: {values, ttl}}] from preflight changes or plain records."""
    expected = []
    for record in records:
        if not record.get("name"):
            raise DnsError("every record needs a name", "input")
        state = record.get("after") or record
        values = state.get("values")
        if not values:
            raise DnsError("%s: no values to check" % record["name"], "input")
        rdtype = (record.get("type") or "").upper() or infer_type(values)
        expected.append(dict(name=absolute_name(record["name"], zone), type=rdtype,
                             after=dict(values=canonical_values(rdtype, values),
                                        ttl=state.get("ttl"))))
    return expected


def main():
    argument_spec = dict(CONNECTION_SPEC)
    argument_spec.update(WAIT_SPEC)
    argument_spec.update(
        records=dict(type="list", elements="dict", required=True),
        change_ids=dict(type="list", elements="str", default=[]),
        interval=dict(type="float", default=0.2),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=CONNECTION_REQUIRED_IF,
                           required_together=CONNECTION_REQUIRED_TOGETHER)
    ensure_libraries(module)
    params = module.params
    timer = Timer()
    result = dict(changed=False, agreed=False, seconds_to_agree=None, servers=[], records=[])
    agreement = None
    try:
        records = expected_records(params["records"], params["zone"])
        result["records"] = [dict(name=r["name"], type=r["type"], values=r["after"]["values"],
                                  ttl=r["after"]["ttl"]) for r in records]
        provider = provider_from_params(params)
        if params["provider"] == "route53":
            provider.zone_info()
        agreement = Agreement(provider, records, params["nameservers"],
                              params["query_nameservers"], params["protocol"])
        seconds = agreement.wait(params["wait_timeout"], params["interval"],
                                 params["change_ids"], since=timer.start, timer=timer)
        result.update(agreed=True, seconds_to_agree=seconds)
    except DnsError as exc:
        result.update(servers=agreement.reports() if agreement else [],
                      timings=timer.report(STEPS))
        module.fail_json(msg=str(exc), error_kind=exc.kind, **result)
    result.update(servers=agreement.reports(), timings=timer.report(STEPS))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
