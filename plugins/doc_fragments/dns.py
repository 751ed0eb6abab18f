# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options with which the DNS modules reach a zone, for both providers."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r'''
options:
  provider:
    description:
      - V(rfc2136) for a primary DNS server that takes dynamic updates signed with a TSIG key
        (BIND, Knot, PowerDNS, ...); V(route53) for an AWS Route 53 hosted zone.
    type: str
    default: rfc2136
    choices: [rfc2136, route53]
  zone:
    description: The zone that holds the records, such as C(failsafe.lab) (a trailing dot is optional).
    type: str
    required: true
  server:
    description:
      - V(rfc2136) only, required there. Address or name of the zone's primary server, where
        updates go.
    type: str
  port:
    description: V(rfc2136) only. Port of the primary server; the zone's other servers are asked on it too.
    type: int
    default: 53
  key_name:
    description: V(rfc2136) only. Name of the TSIG key that signs every message.
    type: str
  key_secret:
    description: V(rfc2136) only. Base64 secret of the TSIG key. Never returned or logged.
    type: str
  key_algorithm:
    description: V(rfc2136) only. Algorithm of the TSIG key.
    type: str
    default: hmac-sha256
    choices: [hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha224, hmac-sha1, hmac-md5]
  protocol:
    description: V(rfc2136) only. Transport to the servers; TCP does not lose answers.
    type: str
    default: tcp
    choices: [tcp, udp]
  timeout:
    description: Seconds to wait for one answer of a server or of the API.
    type: float
    default: 5
  hosted_zone_id:
    description:
      - V(route53) only. ID of the hosted zone (C(Z0123...)). Needed when a public and a private
        zone share the name; otherwise the zone is found by O(zone).
    type: str
  endpoint_url:
    description:
      - V(route53) only. Another Route 53 API endpoint, such as a local emulator in a lab.
        Empty for AWS itself.
    type: str
  access_key:
    description:
      - V(route53) only. AWS access key ID; when not given, boto3 finds credentials as usual
        (environment, profile, instance role).
    type: str
  secret_key:
    description: V(route53) only. AWS secret access key. Never returned or logged.
    type: str
  session_token:
    description: V(route53) only. AWS session token of temporary credentials. Never returned or logged.
    type: str
  aws_region:
    description: V(route53) only. Region the AWS client signs for (Route 53 is global).
    type: str
    default: us-east-1
requirements:
  - dnspython
  - boto3 (provider route53)
'''

    # The records and how they are planned: dns_preflight and dns_update (_dns.PLAN_SPEC).
    PLAN = r'''
options:
  records:
    description:
      - The records as they should be after the switch.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name in the zone (C(postgresql)) or absolute (C(postgresql.failsafe.lab.)).
        type: str
        required: true
      type:
        description: Record type; by default inferred from O(records[].values) (IPv4 A, IPv6 AAAA, one host name CNAME).
        type: str
        choices: [A, AAAA, CNAME]
      values:
        description:
          - The values after the switch. Omitted, the current values stay (a TTL-only change);
            O(records[].type) is then required.
        type: list
        elements: str
      ttl:
        description: TTL of this record after the switch; overrides O(ttl).
        type: int
  ttl:
    description: TTL of every record after the switch. Unset, each record keeps its TTL.
    type: int
  max_ttl:
    description:
      - Cap every record's TTL after the switch at this value (lower, never raise). With
        records without values this is the runbook's "lower the TTL before a planned failover".
    type: int
  default_ttl:
    description: TTL of a record that does not exist yet, when neither O(ttl) nor the record sets one.
    type: int
    default: 60
  keep_values:
    description:
      - Plan with each record's current values; the given O(records[].values) only tell the
        type. With O(max_ttl), this lowers TTLs and nothing else.
    type: bool
    default: false
'''

    # Which servers must answer the new records, and for how long to wait: dns_verify and
    # dns_update (_dns.WAIT_SPEC).
    WAIT = r'''
options:
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
  wait_timeout:
    description: Seconds to wait until every server agrees; then the task fails.
    type: float
    default: 60
'''
