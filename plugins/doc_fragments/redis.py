# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared option docs of the Redis modules."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    # The node the module acts on (flat login_* options).
    DOCUMENTATION = r'''
options:
  login_host:
    description: Host name or address of the Redis server the module acts on.
    type: str
    required: true
  login_port:
    description: TCP port of that server.
    type: int
    default: 6379
  login_user:
    description: ACL user to authenticate as; empty for the default user (C(requirepass)).
    type: str
  login_password:
    description: Password of O(login_user) (or C(requirepass)). Never returned or logged.
    type: str
  tls:
    description:
      - Connect with TLS. Unlike community.general's redis modules the default is a plain
        connection, which is what Redis listens on unless configured otherwise.
    type: bool
    default: false
  ca_cert:
    description: CA certificate file to verify the server with O(tls=true).
    type: path
  connect_timeout:
    description: Seconds to wait for a connection.
    type: float
    default: 3
requirements:
  - redis (redis-py) >= 5
notes:
  - Connections are made with retries off (redis-py 8 retries with backoff by default) so that
    what a server answered is never hidden or delayed.
'''

    # The master (planned failover: the current one; emergency: the lost one, optional).
    MASTER = r'''
options:
  master:
    description:
      - Connection to the current master. Required for O(mode=planned); optional for
        O(mode=emergency), where it is probed to make sure it is really gone.
    type: dict
    suboptions:
      host:
        description: Host name or address of the server.
        type: str
        required: true
      port:
        description: TCP port of the server.
        type: int
        default: 6379
      username:
        description: ACL user to authenticate as; empty for the default user (C(requirepass)).
        type: str
      password:
        description:
          - Password of O(master.username) (or C(requirepass)).
          - Never returned or logged.
        type: str
      tls:
        description:
          - Connect with TLS. Unlike community.general's redis modules the default is a plain
            connection, which is what Redis listens on unless configured otherwise.
        type: bool
        default: false
      ca_cert:
        description: CA certificate file to verify the server with O(master.tls=true).
        type: path
      connect_timeout:
        description: Seconds to wait for a connection.
        type: float
        default: 3
'''

    # Every node of a replication group, each named.
    NODES = r'''
options:
  nodes:
    description:
      - Every node to read, each a connection dict with a C(name) (the C(redis_conn) filter
        builds one from an inventory host; add the name with C(combine)).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the node in the result (the inventory host name).
        type: str
        required: true
      host:
        description: Host name or address of the server.
        type: str
        required: true
      port:
        description: TCP port of the server.
        type: int
        default: 6379
      username:
        description: ACL user to authenticate as; empty for the default user (C(requirepass)).
        type: str
      password:
        description:
          - Password of O(nodes[].username) (or C(requirepass)).
          - Never returned or logged.
        type: str
      tls:
        description: Connect with TLS.
        type: bool
        default: false
      ca_cert:
        description: CA certificate file to verify the server with O(nodes[].tls=true).
        type: path
      connect_timeout:
        description: Seconds to wait for a connection.
        type: float
        default: 3
'''

    # The replica to promote.
    REPLICA = r'''
options:
  replica:
    description: Connection to the replica to promote (the new master).
    type: dict
    required: true
    suboptions:
      host:
        description: Host name or address of the server.
        type: str
        required: true
      port:
        description: TCP port of the server.
        type: int
        default: 6379
      username:
        description: ACL user to authenticate as; empty for the default user (C(requirepass)).
        type: str
      password:
        description:
          - Password of O(replica.username) (or C(requirepass)).
          - Never returned or logged.
        type: str
      tls:
        description:
          - Connect with TLS. Unlike community.general's redis modules the default is a plain
            connection, which is what Redis listens on unless configured otherwise.
        type: bool
        default: false
      ca_cert:
        description: CA certificate file to verify the server with O(replica.tls=true).
        type: path
      connect_timeout:
        description: Seconds to wait for a connection.
        type: float
        default: 3
'''

    # A master to replicate from (redis_replica).
    REPLICA_OF = r'''
options:
  replica_of:
    description: The master this node must replicate from. Omit it with O(role=master).
    type: dict
    suboptions:
      host:
        description: Host name or address of the server.
        type: str
        required: true
      port:
        description: TCP port of the server.
        type: int
        default: 6379
      username:
        description: ACL user to authenticate as; empty for the default user (C(requirepass)).
        type: str
      password:
        description:
          - Password of O(replica_of.username) (or C(requirepass)).
          - Never returned or logged.
        type: str
      tls:
        description:
          - Connect with TLS. Unlike community.general's redis modules the default is a plain
            connection, which is what Redis listens on unless configured otherwise.
        type: bool
        default: false
      ca_cert:
        description: CA certificate file to verify the server with O(replica_of.tls=true).
        type: path
      connect_timeout:
        description: Seconds to wait for a connection.
        type: float
        default: 3
'''

    # Sentinels and the monitored name.
    SENTINELS = r'''
options:
  sentinels:
    description:
      - The Sentinels that watch the master, each as a dict (the C(redis_conn) filter builds one
        from an inventory host). Empty when no Sentinel is used.
    type: list
    elements: dict
    default: []
    suboptions:
      host:
        description: Host name or address of the Sentinel.
        type: str
        required: true
      port:
        description: TCP port of the Sentinel.
        type: int
        default: 26379
      username:
        description: ACL user of the Sentinel, if it has one.
        type: str
      password:
        description:
          - Password of the Sentinel itself (its C(requirepass)), if it has one.
          - Never returned or logged.
        type: str
      tls:
        description: Connect to the Sentinel with TLS.
        type: bool
        default: false
      ca_cert:
        description: CA certificate file to verify the Sentinel with O(sentinels[].tls=true).
        type: path
      connect_timeout:
        description: Seconds to wait for a connection.
        type: float
        default: 3
  master_name:
    description: The name the Sentinels monitor the master under. Required with O(sentinels).
    type: str
'''
