#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: opensearch_reroute
short_description: Allocate a lost OpenSearch shard, a primary only with accepted data loss and a recent snapshot
version_added: 0.4.0
description:
  - "Runbook 000 (Reroute Shards: C(allocate_empty_primary) \"only if shard lost after
    confirming snapshot recency\"): read the shard (C(_cat/shards)) - a started primary needs
    nothing -> for a primary, refuse unless O(accept_data_loss=true) AND the repository
    O(snapshot_repository) holds a C(SUCCESS) snapshot of the index that ended less than
    O(snapshot_max_age_hours) ago (C(GET /_snapshot/REPO/_all)) -> check the node exists ->
    C(POST /_cluster/reroute?dry_run=true&explain=true) and refuse when a decider says NO ->
    C(POST /_cluster/reroute?explain=true) -> wait until the primary is C(STARTED)."
  - "V(allocate_stale_primary) keeps the data of a stale copy (writes after it fell behind
    are lost); V(allocate_empty_primary) starts the shard empty (all its documents lost):
    restore them from the snapshot afterwards (C(failsafe.datastores.restore_opensearch),
    or C(playbooks/opensearch_recovery.yml) which does both)."
  - Tested against a recorded-response stand-in of OpenSearch's REST API, not a real OpenSearch (docs/opensearch.md).
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Runs every check and OpenSearch's own dry run (C(dry_run=true&explain=true)), which
        changes nothing; returns its explanation.
  diff_mode:
    support: full
  idempotent:
    description: A started primary is left alone.
    support: full
options:
  server:
    description: The OpenSearch cluster; user and password are required.
    type: dict
    required: true
    suboptions:
      url:
        description: Its REST URL (C(https://opensearch:9200)).
        type: str
        required: true
      user:
        description: User for basic authentication.
        type: str
      password:
        description: Its password. Never returned or logged.
        type: str
      ca_cert:
        description: CA bundle for an C(https) URL.
        type: path
      timeout:
        description: Seconds per request.
        type: float
        default: 600
  index:
    description: The index of the shard.
    type: str
    required: true
  shard:
    description: The shard number.
    type: int
    required: true
  node:
    description: The node to allocate it on (C(_cat/nodes) name).
    type: str
    required: true
  command:
    description: The reroute command.
    type: str
    choices: [allocate_empty_primary, allocate_stale_primary, allocate_replica]
    default: allocate_empty_primary
  accept_data_loss:
    description: Must be V(true) for a primary command - it loses data.
    type: bool
    default: false
  snapshot_repository:
    description: Repository that must hold a recent snapshot of the index (primary commands).
    type: str
  snapshot_max_age_hours:
    description: Age in hours the newest snapshot of the index may have at most.
    type: float
    default: 24
  wait_timeout:
    description: Seconds to wait for the primary to be C(STARTED); 0 does not wait.
    type: float
    default: 300
'''

EXAMPLES = r'''
- name: Allocate the lost primary of chunks_v1 empty, a snapshot of today being there
  failsafe.datastores.opensearch_reroute:
    server:
      url: https://opensearch:9200
      user: admin
      password: "{{ vault_opensearch_password }}"
    index: chunks_v1
    shard: 0
    node: opensearch-data-1
    command: allocate_empty_primary
    accept_data_loss: true
    snapshot_repository: medkg
    snapshot_max_age_hours: 24
'''

RETURN = r'''
shard:
  description: The primary's C(_cat/shards) row before the run.
  returned: always
  type: dict
snapshot:
  description: The newest snapshot of the index (snapshot, end_time, age_hours), for primary commands.
  returned: always
  type: dict
explanations:
  description: OpenSearch's reroute explanations (command, decisions) of the dry run.
  returned: always
  type: list
  elements: dict
requests:
  description: The write requests sent (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
timings:
  description: Seconds for C(checks), C(reroute), C(wait) and C(total).
  returned: always
  type: dict
diff:
  description: The shard's state before and after.
  returned: when diff mode is on
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils import _opensearch
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer

STEPS = (("checks", None, "checked"), ("reroute", "checked", "rerouted"),
         ("wait", "rerouted", "started"))


def guard_snapshot(cluster, params, result):
    repo = params["snapshot_repository"]
    if not repo:
        raise _opensearch.OpenSearchError(
            "%s needs snapshot_repository: the runbook allows losing shard data only after "
            "confirming a recent snapshot of %s. Nothing was sent that writes"
            % (params["command"], params["index"]))
    snapshots = cluster.snapshots(repo)
    if snapshots is None:
        raise _opensearch.OpenSearchError(
            "snapshot repository %s does not exist on %s. Nothing was sent that writes"
            % (repo, cluster.describe()))
    newest, age = _opensearch.newest_snapshot(snapshots, params["index"])
    if newest is None or age > params["snapshot_max_age_hours"]:
        raise _opensearch.OpenSearchError(
            "no SUCCESS snapshot of %s in repository %s newer than %s h (newest: %s): take one "
            "(playbooks/backup.yml) or choose another way before losing the shard's data. "
            "Nothing was sent that writes"
            % (params["index"], repo, params["snapshot_max_age_hours"],
               "%s, %s h old" % (newest["snapshot"], age) if newest else "none"))
    result["snapshot"] = dict(snapshot=newest["snapshot"], end_time=newest.get("end_time"),
                              age_hours=age)


def main():  # pylint: disable=too-many-statements
    module = AnsibleModule(
        argument_spec=dict(
            server=_opensearch.server_option(),
            index=dict(type="str", required=True),
            shard=dict(type="int", required=True),
            node=dict(type="str", required=True),
            command=dict(type="str", default="allocate_empty_primary",
                         choices=["allocate_empty_primary", "allocate_stale_primary",
                                  "allocate_replica"]),
            accept_data_loss=dict(type="bool", default=False),
            snapshot_repository=dict(type="str"),
            snapshot_max_age_hours=dict(type="float", default=24),
            wait_timeout=dict(type="float", default=300),
        ),
        supports_check_mode=True,
    )
    params = module.params
    timer = Timer()
    result = dict(changed=False, shard={}, snapshot={}, explanations=[], requests=[])
    primary_command = params["command"] in _opensearch.PRIMARY_COMMANDS
    before = after = None
    try:
        _opensearch.require_credentials(params["server"], "a reroute")
        if primary_command and not params["accept_data_loss"]:
            raise _opensearch.OpenSearchError(
                "%s of %s[%s] loses data: set accept_data_loss=true to confirm (and keep a "
                "snapshot of the index newer than snapshot_max_age_hours). Nothing was sent"
                % (params["command"], params["index"], params["shard"]))
        cluster = _opensearch.OpenSearchCluster(params["server"])
        row = cluster.primary(params["index"], params["shard"])
        if row is None:
            raise _opensearch.OpenSearchError(
                "no shard %s of index %s in _cat/shards. Nothing was sent that writes"
                % (params["shard"], params["index"]))
        result["shard"] = row
        before = row.get("state")
        wanted = "STARTED"
        if params["command"] == "allocate_replica":
            replicas = [r for r in cluster.shards(params["index"])
                        if str(r.get("shard")) == str(params["shard"]) and r.get("prirep") == "r"]
            if not any(r.get("state") == "UNASSIGNED" for r in replicas):
                before = "no unassigned replica"
                wanted = before
        elif before != "UNASSIGNED":
            wanted = before
        if before == wanted:
            timer.mark("checked")
            finish(module, result, timer, before, before)
        if primary_command:
            guard_snapshot(cluster, params, result)
        names = [n.get("name") for n in cluster.nodes()]
        if params["node"] not in names:
            raise _opensearch.OpenSearchError(
                "no node %s in the cluster (nodes: %s). Nothing was sent that writes"
                % (params["node"], ", ".join(sorted(n for n in names if n))))
        body = dict(index=params["index"], shard=params["shard"], node=params["node"])
        if primary_command:
            body["accept_data_loss"] = True
        commands = [{params["command"]: body}]
        dry = cluster.reroute(commands, dry_run=True)
        result["explanations"] = dry.get("explanations") or []
        refusals = [d.get("explanation") for e in result["explanations"]
                    for d in e.get("decisions") or [] if d.get("decision") == "NO"]
        if refusals:
            raise _opensearch.OpenSearchError(
                "OpenSearch's dry run refuses %s of %s[%s] on %s: %s. Nothing was changed"
                % (params["command"], params["index"], params["shard"], params["node"],
                   "; ".join(refusals)))
        result["requests"] = ["POST /_cluster/reroute?explain=true %s" % params["command"]]
        result["changed"] = True
        after = "STARTED"
        timer.mark("checked")
        if not module.check_mode:
            cluster.reroute(commands, dry_run=False)
            timer.mark("rerouted")
            if params["wait_timeout"] > 0 and params["command"] != "allocate_replica":
                cluster.wait_started(params["index"], params["shard"], params["wait_timeout"])
            timer.mark("started")
    except _opensearch.OpenSearchError as exc:
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=str(exc), **result)
    finish(module, result, timer, before, after)


def finish(module, result, timer, before, after):
    result["timings"] = timer.report(STEPS)
    if module._diff:
        result["diff"] = dict(before=dict(state=before), after=dict(state=after))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
