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
