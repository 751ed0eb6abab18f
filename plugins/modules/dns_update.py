#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: dns_update
short_description: Switch DNS records in one atomic change, and wait until every authoritative server answers them
version_added: 0.4.0
description:
  - For one provider (an RFC 2136 server such as BIND, or a Route 53 hosted zone), in one call
    reads the current records, plans what differs (the same plan and options as
    M(failsafe.datastores.dns_preflight)), applies every differing record in ONE atomic step
    and, with O(wait), waits until every authoritative server answers the new values.
  - "RFC 2136: one TSIG-signed UPDATE message carries every record's delete and add. Its
    prerequisites are each record exactly as it was just read (or its absence): if anybody
    changed one of them in between, the server refuses the whole message (NXRRSET, YXRRSET)
    and no record changes; the task fails with C(error_kind=changed) and says which record
    moved. RFC 2136 section 3.7 makes the server apply an update message atomically: either
    every record is switched or none."
  - "Route 53: one C(ChangeResourceRecordSets) call whose C(ChangeBatch) holds an C(UPSERT) per
    record; Route 53 applies a batch whole or not at all. C(UPSERT) has no prerequisite: a
    record that somebody changed between the read and the batch is overwritten with the
    planned values."
  - "Why not community.general.nsupdate and amazon.aws.route53 (which the role used before):
    both change one record per call. Between two calls some names point at the new region and
    others at the old one (an application that resolves C(postgresql) and C(redis) may write
    to two regions), and if the run dies between them the zone stays half switched. Each call
    is also one Ansible module start (0.5-0.8 s here, boto3 imported each time), followed by
    a separate verification task: for three records on two providers the role's change and
    verify took 8.8-19.4 s (median 13.4 s) in the lab, inside the application's downtime,
    against 2.9-5.1 s (median 3.9 s) with this module (docs/dns.md, Measured). One UPDATE
    message or one ChangeBatch switches every name at once, and the wait runs in the same
    call."
  - The wait is the one of M(failsafe.datastores.dns_verify) (the same code) - every
    authoritative server asked directly, no resolver, no cache, recursion off - and it starts
    the moment the change is acknowledged; RV(seconds_to_agree) counts from that moment.
  - Check mode reads and plans only; no update message and no change batch is sent, and
    nothing is waited for.
  - "On failure the result carries C(error_kind): C(unreachable) (no server answers there; an
    update already sent may or may not have been applied, the message says so), C(key) (the
    TSIG key or the AWS credentials are refused), C(rights) (a live server refused the update
    for these names: update-policy, IAM policy), C(zone) (zone missing or not authoritative),
    C(record) (a record that cannot be handled, a change batch refused), C(changed) (a record
    changed between the read and the update: nothing was applied), C(input), C(disagree)
    (servers still differ at the O(wait_timeout); the change itself was made), C(pending)
    (Route 53 not INSYNC at the timeout)."
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.dns
  - failsafe.datastores.dns.PLAN
  - failsafe.datastores.dns.WAIT
  - failsafe.datastores.attributes
options:
  wait:
    description:
      - After the change, wait until every authoritative server answers every record of
        O(records) as planned (also the ones already right). V(false) returns as soon as the
        server or the API acknowledged the change.
    type: bool
    default: true
  interval:
    description: Seconds between two rounds of questions while waiting.
    type: float
    default: 0.1
attributes:
  check_mode:
    support: full
    details: Reads and plans; sends no update and no change batch.
  diff_mode:
    support: full
    details: Per record (C(NAME TYPE)), C(ttl) and C(values) before and after.
  idempotent:
    description: Records already as planned are left alone; when none differs, nothing is sent.
    support: full
'''

EXAMPLES = r'''
- name: Switch the service names to us-west in one atomic update, and wait for every server
  failsafe.datastores.dns_update:
    provider: rfc2136
    server: 10.0.0.53
    zone: example.com
    key_name: failover
    key_secret: "{{ vault_tsig_secret }}"
    records:
      - name: postgresql
        values: [10.20.1.10]
      - name: redis
        values: [10.20.2.10]
      - name: api
        values: [10.20.0.80]
    wait_timeout: 120
  delegate_to: localhost
  register: dns_switched

- name: The same names in Route 53, one change batch
  failsafe.datastores.dns_update:
    provider: route53
    zone: example.com
    records: "{{ dns_plan.expected }}"
  delegate_to: localhost

- name: A day before a planned failover, lower every TTL to 60 s, values unchanged
  failsafe.datastores.dns_update:
    provider: route53
    zone: example.com
    records: [{name: postgresql, type: A}, {name: api, type: A}]
    keep_values: true
    max_ttl: 60
  delegate_to: localhost
'''

RETURN = r'''
provider:
  description: The provider, C(rfc2136) or C(route53).
  returned: always
  type: str
zone:
  description: The zone as found (as RV(failsafe.datastores.dns_preflight#module:zone) returns it).
  returned: success
  type: dict
changes:
  description:
    - The records that differed and were changed (in check mode, would be), each with C(name),
      C(type), C(before) (C(ttl), C(values); null when the record did not exist) and C(after).
  returned: success
  type: list
  elements: dict
  sample: [{"name": "postgresql.failsafe.lab.", "type": "A",
            "before": {"ttl": 5, "values": ["127.0.1.1"]},
            "after": {"ttl": 5, "values": ["127.0.2.1"]}}]
unchanged:
  description: Absolute names of the records that were already right.
  returned: success
  type: list
  elements: str
expected:
  description: Every record as it is after the switch, changed or not (C(name), C(type), C(ttl), C(values)).
  returned: success
  type: list
  elements: dict
summary:
  description: One line per change, C(NAME TYPE OLD -> NEW (ttl OLD -> NEW)).
  returned: success
  type: list
  elements: str
  sample: ["postgresql.failsafe.lab. A 127.0.1.1 -> 127.0.2.1 (ttl 5)"]
max_old_ttl:
  description: The highest TTL among the changed records (0 when none changed), how long resolvers may answer the old values.
  returned: success
  type: int
change_id:
  description:
    - Route 53, the ID of the change batch (for C(GetChange), or
      O(failsafe.datastores.dns_verify#module:change_ids)). Null for RFC 2136, without a change,
      and in check mode.
  returned: success
  type: str
agreed:
  description: Whether every server answered every record as planned (false when O(wait) is off or in check mode).
  returned: always
  type: bool
seconds_to_agree:
  description:
    - Seconds from the acknowledged change until the last server answered the new values;
      null when not waited for.
  returned: always
  type: float
servers:
  description:
    - Per server asked while waiting (C(server); C(api) for the Route 53 API read-back),
      C(answers) (per C(NAME TYPE), the last answer as text), C(serial) (SOA serial, RFC 2136),
      C(agreed_after) (seconds, null while it differed). Empty when not waited for.
  returned: always
  type: list
  elements: dict
timings:
  description:
    - Seconds for C(read) (zone and records read, plan made), C(update) (the one update message
      or change batch, until acknowledged), C(agree) (until every server answers; null when not
      waited for) and C(total).
  returned: always
  type: dict
diff:
  description: Per record (C(NAME TYPE)), C(ttl) and C(values) before (null for a missing record) and after.
  returned: when diff mode is on
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer
from ansible_collections.failsafe.datastores.plugins.module_utils._dns import (
    CONNECTION_REQUIRED_IF,
    CONNECTION_REQUIRED_TOGETHER,
    CONNECTION_SPEC,
    PLAN_SPEC,
    WAIT_SPEC,
    Agreement,
    DnsError,
    describe_change,
    ensure_libraries,
    plan_from_params,
    provider_from_params,
    wanted_records,
)

STEPS = (("read", None, "read"), ("update", "read", "update"), ("agree", "update", "agreed"))


def record_states(entries):
    """{'NAME TYPE': {ttl, values}} of plan entries, as `before` or `after` of the diff."""
    return lambda side: dict(("%s %s" % (e["name"], e["type"]), e[side]) for e in entries)


def main():
    argument_spec = dict(CONNECTION_SPEC)
    argument_spec.update(PLAN_SPEC)
    argument_spec.update(WAIT_SPEC)
    argument_spec.update(
        wait=dict(type="bool", default=True),
        interval=dict(type="float", default=0.1),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=CONNECTION_REQUIRED_IF,
                           required_together=CONNECTION_REQUIRED_TOGETHER)
    ensure_libraries(module)
    params = module.params
    timer = Timer()
    result = dict(changed=False, provider=params["provider"], agreed=False,
                  seconds_to_agree=None, servers=[])
    agreement = None
    try:
        wanted = wanted_records(params["records"], params["zone"])
        provider = provider_from_params(params)
        zone = provider.zone_info()
        wanted, _current, changes, unchanged = plan_from_params(provider, wanted, params)
        timer.mark("read")
        result.update(
            zone=zone, changes=changes, unchanged=[entry["name"] for entry in unchanged],
            expected=[dict(name=e["name"], type=e["type"], **e["after"])
                      for e in changes + unchanged],
            summary=[describe_change(change) for change in changes],
            max_old_ttl=max([c["before"]["ttl"] for c in changes if c["before"]] or [0]),
            change_id=None)
        if module._diff:
            states = record_states(changes + unchanged)
            result["diff"] = dict(before=states("before"), after=states("after"))
        if module.check_mode:
            result.update(changed=bool(changes), timings=timer.report(STEPS))
            module.exit_json(**result)
        result["change_id"] = provider.apply(changes)
        result["changed"] = bool(changes)
        acknowledged = timer.mark("update")
        if params["wait"]:
            agreement = Agreement(provider, changes + unchanged, params["nameservers"],
                                  params["query_nameservers"], params["protocol"])
            seconds = agreement.wait(params["wait_timeout"], params["interval"],
                                     [result["change_id"]], since=acknowledged)
            timer.mark("agreed")
            result.update(agreed=True, seconds_to_agree=seconds)
    except DnsError as exc:
        result.update(servers=agreement.reports() if agreement else [],
                      timings=timer.report(STEPS))
        module.fail_json(msg=str(exc), error_kind=exc.kind, **result)
    result.update(servers=agreement.reports() if agreement else [], timings=timer.report(STEPS))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
