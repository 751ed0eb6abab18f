# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared option docs of the neo4j_* modules (Bolt connection over the official driver)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r'''
options:
  uri:
    description:
      - Bolt URI of a cluster member, C(bolt://host:7687) (that server) or C(neo4j://host:7687)
        (routing); C(+s) / C(+ssc) schemes for TLS.
    type: str
    required: true
  user:
    description: User to authenticate as (basic authentication).
    type: str
    default: neo4j
  password:
    description: Its password. Never returned or logged.
    type: str
  ca_cert:
    description: CA bundle to verify the server's certificate with (C(bolt+s://)).
    type: path
  connect_timeout:
    description: Seconds to wait for a connection.
    type: float
    default: 10
  timeout:
    description:
      - Seconds per statement, sent as the transaction timeout and enforced on the client too
        (a server that never answers fails the task after this plus O(connect_timeout)).
    type: float
    default: 60
requirements:
  - neo4j (the official Neo4j Python driver) >= 5 on the host that runs the module
notes:
  - A server that answers but refuses the credentials is reported as such, never as unreachable.
'''
