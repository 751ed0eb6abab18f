# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenSearch cluster operations (health, shards, allocation explain, reroute, snapshot list)
on the one HTTP client of the collection, `_backup_opensearch.OpenSearch` (http.client from the
standard library: the same requests, errors and credential handling as the snapshot modules)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

try:
    from urllib.parse import quote
except ImportError:  # pragma: no cover - Python 2
    quote = None

from ansible_collections.failsafe.datastores.plugins.module_utils._backup_opensearch import (
    OPENSEARCH_SPEC,
    OpenSearch,
    OpenSearchError,
)

__all__ = ["OPENSEARCH_SPEC", "OpenSearchCluster", "OpenSearchError", "server_option",
           "require_credentials", "newest_snapshot"]

SHARD_COLUMNS = "index,shard,prirep,state,node,unassigned.reason"
PRIMARY_COMMANDS = ("allocate_stale_primary", "allocate_empty_primary")


def server_option():
    return dict(type="dict", required=True, options=dict(OPENSEARCH_SPEC))


def require_credentials(server, what):
    """Refuse before any request when the credentials are missing or half given."""
    if not server.get("user") or not server.get("password"):
        raise OpenSearchError(
            "missing credentials for %s: give server.user and server.password (the password from "
            "vault; failsafe_opensearch_user / failsafe_opensearch_password in the inventory). "
            "Nothing was sent" % what)


class OpenSearchCluster(OpenSearch):
    """The snapshot client plus the cluster API of runbook 000 (OpenSearch Failover)."""

    def health(self):
        return self.request("GET", "/_cluster/health", "reading the cluster health")

    def shards(self, index=None):
        path = "/_cat/shards" + ("/%s" % quote(index, safe="") if index else "")
        return self.request("GET", path, "listing shards",
                            query={"format": "json", "h": SHARD_COLUMNS}) or []

    def nodes(self):
        return self.request("GET", "/_cat/nodes", "listing nodes",
                            query={"format": "json", "h": "name,node.role,ip"}) or []

    def explain(self, index, shard, primary):
        """_cluster/allocation/explain: a POST that changes nothing."""
        return self.request("POST", "/_cluster/allocation/explain",
                            "explaining the allocation of %s[%s]" % (index, shard),
                            body={"index": index, "shard": shard, "primary": primary})

    def snapshots(self, repo):
        """Every snapshot of a repository (None when the repository does not exist)."""
        found = self.request("GET", "/_snapshot/%s/_all" % quote(repo, safe=""),
                             "listing the snapshots of repository %s" % repo, missing_ok=True)
        return None if found is None else (found.get("snapshots") or [])

    def reroute(self, commands, dry_run):
        query = {"explain": "true"}
        if dry_run:
            query["dry_run"] = "true"
        return self.request("POST", "/_cluster/reroute",
                            "%s the reroute" % ("dry-running" if dry_run else "running"),
                            body={"commands": commands}, query=query)

    def primary(self, index, shard):
        """The _cat/shards row of a shard's primary, or None."""
        for row in self.shards(index):
            if row.get("index") == index and str(row.get("shard")) == str(shard) \
                    and row.get("prirep") == "p":
                return row
        return None

    def wait_started(self, index, shard, timeout):
        deadline = time.monotonic() + timeout
        while True:
            row = self.primary(index, shard)
            if row and row.get("state") == "STARTED":
                return row
            if time.monotonic() >= deadline:
                raise OpenSearchError(
                    "the primary of %s[%s] is %s after %s s: the reroute was accepted; watch "
                    "_cat/recovery and run again to wait more"
                    % (index, shard, row.get("state") if row else "missing", timeout))
            time.sleep(0.5)


def newest_snapshot(snapshots, index, now_ms=None):
    """The newest SUCCESS snapshot holding `index` as (snapshot, age in hours), or (None, None)."""
    now_ms = now_ms if now_ms is not None else time.time() * 1000
    holding = [s for s in snapshots if s.get("state") == "SUCCESS"
               and index in (s.get("indices") or []) and s.get("end_time_in_millis")]
    if not holding:
        return None, None
    newest = max(holding, key=lambda s: s["end_time_in_millis"])
    return newest, round((now_ms - newest["end_time_in_millis"]) / 3600000.0, 3)
