#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: neo4j_transactions
short_description: List Neo4j transactions and terminate those running longer than a limit
version_added: 0.4.0
description:
  - "Runbook 001 (Performance Degradation: list slow queries, kill them) in Neo4j 5 terms
    (C(dbms.listQueries) and C(dbms.killQuery) are gone): C(SHOW TRANSACTIONS) -> select
    those running longer than O(older_than) seconds (of O(databases) and O(users) when given)
    -> C(TERMINATE TRANSACTIONS) with their ids as a parameter."
  - "Never the module's own: its statements carry a marker comment and the transaction that
    runs them is left out."
  - "C(SHOW TRANSACTIONS) lists the transactions of the server it runs on: give each member's
    C(bolt://) URI to cover a cluster."
  - Tested against a scripted Bolt stand-in of a Neo4j 5 cluster, not a real Neo4j (docs/neo4j.md).
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.neo4j
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Lists the transactions that would be terminated; terminates none.
  diff_mode:
    support: full
  idempotent:
    description: A second run terminates only transactions that have grown old since.
    support: full
options:
  older_than:
    description: Seconds a transaction must have run to be selected (runbook 001 - 1 s for a slow query; 300 s is a safer default for a kill).
    type: float
    default: 300
  databases:
    description: Only transactions of these databases; empty for every database.
    type: list
    elements: str
    default: []
  users:
    description: Only transactions of these users; empty for every user.
    type: list
    elements: str
    default: []
  terminate:
    description: Terminate the selected transactions; V(false) only lists them.
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Terminate graph transactions older than 5 minutes
  failsafe.datastores.neo4j_transactions:
    uri: bolt://neo4j-core-0.neo4j:7687
    password: "{{ vault_neo4j_password }}"
    older_than: 300
    databases: [neo4j]
    terminate: true
'''

RETURN = r'''
transactions:
  description: Every transaction listed (the module's own left out), elapsedTime in seconds.
  returned: always
  type: list
  elements: dict
selected:
  description: Ids of the transactions older than O(older_than) that match the filters.
  returned: always
  type: list
  elements: str
terminated:
  description: TERMINATE TRANSACTIONS rows (transactionId, username, message).
  returned: always
  type: list
  elements: dict
timings:
  description: Seconds for C(list), C(terminate) and C(total).
  returned: always
  type: dict
diff:
  description: Selected transactions before; none after.
  returned: when diff mode is on
  type: dict
'''

import uuid

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils import _neo4j
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer

STEPS = (("list", None, "listed"), ("terminate", "listed", "terminated"))
SHOW = ("SHOW TRANSACTIONS YIELD transactionId, database, currentQuery, username, elapsedTime, "
        "status, connectionId, clientAddress, startTime")
TERMINATE = "TERMINATE TRANSACTIONS $ids YIELD transactionId, username, message"


def choose(rows, marker, params):
    """(listed without our own, selected ids)."""
    listed = [row for row in rows if marker not in (row.get("currentQuery") or "")]
    selected = [row["transactionId"] for row in listed
                if (row.get("elapsedTime") or 0) >= params["older_than"]
                and (not params["databases"] or row.get("database") in params["databases"])
                and (not params["users"] or row.get("username") in params["users"])]
    return listed, selected


def main():
    spec = _neo4j.argument_spec()
    spec.update(
        older_than=dict(type="float", default=300),
        databases=dict(type="list", elements="str", default=[]),
        users=dict(type="list", elements="str", default=[]),
        terminate=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    _neo4j.ensure_driver(module)
    params = module.params
    timer = Timer()
    result = dict(changed=False, transactions=[], selected=[], terminated=[])
    client = _neo4j.Neo4jClient(params)
    # A marker in a comment of our statements: the transaction running them lists it as its
    # currentQuery, and is left out.
    marker = "failsafe.datastores.neo4j_transactions %s" % uuid.uuid4().hex
    try:
        rows = client.query("%s /* %s */" % (SHOW, marker), database=_neo4j.SYSTEM,
                            doing="listing transactions (SHOW TRANSACTIONS)")
        result["transactions"], result["selected"] = choose(rows, marker, params)
        result["changed"] = bool(params["terminate"] and result["selected"])
        timer.mark("listed")
        if result["changed"] and not module.check_mode:
            result["terminated"] = client.query(
                "%s /* %s */" % (TERMINATE, marker), {"ids": result["selected"]},
                database=_neo4j.SYSTEM, doing="terminating %d transactions"
                % len(result["selected"]))
        timer.mark("terminated")
    except _neo4j.Neo4jFailure as exc:
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=str(exc), **result)
    finally:
        client.close()
    result["timings"] = timer.report(STEPS)
    if module._diff:
        result["diff"] = dict(before=dict(selected=result["selected"]),
                              after=dict(selected=[] if params["terminate"]
                                         else result["selected"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
