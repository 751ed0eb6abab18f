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
  - Only reads.
  - "On failure the result carries C(error_kind): C(unreachable) (no server answers there),
    C(key) (TSIG key or credentials rejected), C(rights) (a live server refused this name),
    C(zone) (zone missing or not authoritative), C(record) (a record that cannot be handled),
    C(changed) (changed while checked), C(input), C(disagree) (servers still differ at the timeout), C(pending) (Route 53 not INSYNC)."
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.dns
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
  nameservers:
    description:
      - RFC 2136. The authoritative servers to ask, as C(HOST) or C(HOST:PORT) (default port
        O(port)). Empty, they are the zone's NS servers.
      - Route 53. Servers to ask instead of the hosted zone's delegation set.
    type: list
    elements: str
    default: []
  query_nameservers:
    description:
      - Route 53 only. Ask the name servers (O(nameservers), or the delegation set) directly on port 53.
    type: bool
    default: true
  change_ids:
    description: Route 53 only. Change IDs (from C(amazon.aws.route53)'s C(wait_id)) that must become C(INSYNC).
    type: list
    elements: str
    default: []
  wait_timeout:
    description: Seconds to wait until every server agrees; then the task fails.
    type: float
    default: 60
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

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer
from ansible_collections.failsafe.datastores.plugins.module_utils._dns import (
    CONNECTION_REQUIRED_IF,
    CONNECTION_REQUIRED_TOGETHER,
    CONNECTION_SPEC,
    DirectQuery,
    DnsError,
    absolute_name,
    answer_matches,
    canonical_values,
    describe_answer,
    ensure_libraries,
    infer_type,
    parse_server,
    provider_from_params,
    resolve_all,
    server_label,
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


def matches(answer, record):
    wanted = record["after"]
    if wanted["ttl"] is None:
        return answer_matches(answer, dict(after=dict(values=wanted["values"],
                                                      ttl=(answer or {}).get("ttl"))))
    return answer_matches(answer, record)


class Server:
    """One authoritative server (or the Route 53 API) and what it last answered."""

    def __init__(self, label, ask, serial=None):
        self.label = label
        self.ask = ask  # ask(name, rdtype) -> {ttl, values} or {error}
        self.serial_of = serial
        self.answers = {}
        self.agreed_after = None

    def poll(self, records, elapsed):
        agreed = True
        for record in records:
            key = "%s %s" % (record["name"], record["type"])
            answer = self.ask(record["name"], record["type"])
            self.answers[key] = answer
            agreed = matches(answer, record) and agreed
        if agreed and self.agreed_after is None:
            self.agreed_after = elapsed
        elif not agreed:
            self.agreed_after = None
        return agreed

    def report(self):
        return dict(server=self.label, agreed_after=self.agreed_after,
                    serial=self.serial_of() if self.serial_of else None,
                    answers=dict((k, describe_answer(v)) for k, v in sorted(self.answers.items())))


def dns_servers(params, provider):
    """Servers to ask directly, for both providers."""
    if params["provider"] == "rfc2136":
        found = provider.authoritative_servers(explicit=params["nameservers"])
        return [Server(label, bound_ask(provider, address, port),
                       bound_serial(provider, address, port))
                for label, address, port in found]
    if not params["query_nameservers"]:
        return []
    names = params["nameservers"] or provider.zone_info()["nameservers"]
    servers = []
    for entry in names:
        host, port = parse_server(entry, 53)
        for address in resolve_all(host.rstrip(".")):
            asker = DirectQuery(params["zone"], address, port, params["protocol"],
                                params["timeout"])
            servers.append(Server("%s (%s)" % (server_label(address, port), host),
                                  bound_ask(asker, address, port)))
    return servers


def bound_ask(querier, address, port):
    return lambda name, rdtype: querier.answer_of(address, port, name, rdtype)


def bound_serial(querier, address, port):
    return lambda: querier.serial_at(address, port)


def api_server(provider):
    def ask(name, rdtype):
        try:
            found = provider.read(name, rdtype)
        except DnsError as exc:
            return dict(error=str(exc), kind=exc.kind)
        return dict(ttl=found["ttl"], values=found["values"]) if found else \
            dict(ttl=None, values=[])
    return Server("api (%s)" % (provider.endpoint_url or "Route 53"), ask)


def wait_insync(provider, change_ids, deadline, interval):
    pending = list(change_ids)
    while pending:
        pending = [c for c in pending if provider.change_status(c) != "INSYNC"]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise DnsError("Route 53 still reports changes %s PENDING: the records are changed "
                           "but not yet on every Route 53 server; check again later"
                           % ", ".join(pending), "pending")
        time.sleep(max(interval, 1.0))


def main():
    argument_spec = dict(CONNECTION_SPEC)
    argument_spec.update(
        records=dict(type="list", elements="dict", required=True),
        nameservers=dict(type="list", elements="str", default=[]),
        query_nameservers=dict(type="bool", default=True),
        change_ids=dict(type="list", elements="str", default=[]),
        wait_timeout=dict(type="float", default=60),
        interval=dict(type="float", default=0.2),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=CONNECTION_REQUIRED_IF,
                           required_together=CONNECTION_REQUIRED_TOGETHER)
    ensure_libraries(module)
    params = module.params
    timer = Timer()
    result = dict(changed=False, agreed=False, seconds_to_agree=None, servers=[], records=[])
    servers = []
    try:
        records = expected_records(params["records"], params["zone"])
        result["records"] = [dict(name=r["name"], type=r["type"], values=r["after"]["values"],
                                  ttl=r["after"]["ttl"]) for r in records]
        provider = provider_from_params(params)
        deadline = time.monotonic() + params["wait_timeout"]
        if params["provider"] == "route53":
            provider.zone_info()
            wait_insync(provider, params["change_ids"], deadline, params["interval"])
            servers.append(api_server(provider))
        timer.mark("insync")
        servers.extend(dns_servers(params, provider))
        while True:
            elapsed = round(time.monotonic() - timer.start, 6)
            agreed = [server.poll(records, elapsed) for server in servers]
            if all(agreed):
                timer.mark("agreed")
                result.update(agreed=True, seconds_to_agree=elapsed)
                break
            if time.monotonic() > deadline:
                late = [s for s, ok in zip(servers, agreed) if not ok]
                raise DnsError(
                    "after %ss not every authoritative server answers the new records: %s"
                    % (params["wait_timeout"], "; ".join(
                        "%s answers %s" % (s.label, ", ".join(
                            "%s: %s" % (k, describe_answer(v)) for k, v in sorted(s.answers.items())
                            if not matches(v, by_key(records, k))))
                        for s in late)), "disagree")
            time.sleep(params["interval"])
    except DnsError as exc:
        result.update(servers=[s.report() for s in servers], timings=timer.report(STEPS))
        module.fail_json(msg=str(exc), error_kind=exc.kind, **result)
    result.update(servers=[s.report() for s in servers], timings=timer.report(STEPS))
    module.exit_json(**result)


def by_key(records, key):
    for record in records:
        if "%s %s" % (record["name"], record["type"]) == key:
            return record
    raise KeyError(key)  # pragma: no cover


if __name__ == "__main__":
    main()
