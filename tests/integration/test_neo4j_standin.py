"""The neo4j_* modules against a scripted Bolt STAND-IN of a Neo4j 5 cluster (NOT Neo4j:
engines/neo4j_bolt_standin.py speaks Bolt 5.4 to the real `neo4j` driver, answers a fixed
catalogue of statements from a model of servers, databases, indexes and transactions, and fails
the test on any other statement), and neo4j_store_info against the stand-in `neo4j-admin`
(engines/neo4j_standin.py).

Every state-changing module runs check -> real -> check -> real; the state is then read
independently: in the stand-in's model and through the driver directly. Check mode must send no
statement that changes anything (`writes()`).
"""

from __future__ import annotations

import json

import neo4j
import pytest

pytestmark = pytest.mark.usefixtures("lab_env")


def independent(standin, statement, database="system", **params):
    """The same server read by the driver directly, not through a module."""
    with neo4j.GraphDatabase.driver(standin.uri, auth=(standin.user, standin.password),
                                    connection_timeout=5) as driver:
        with driver.session(database=database) as session:
            return session.run(statement, params).data()


def four_steps(run_module, name, args, standin):
    """check -> real -> check -> real; returns the four results."""
    results = []
    for check in (True, False, True, False):
        writes_before = len(standin.writes())
        result = run_module(name, args, check=check, diff=True)
        assert not result.failed, result.msg
        if check:
            assert len(standin.writes()) == writes_before, standin.writes()[writes_before:]
        results.append(result)
    first, real, again, last = results
    assert first.changed and real.changed, (first, real)
    assert not again.changed and not last.changed, (again, last)
    assert first["statements"] == real["statements"] and again["statements"] == []
    return results


def test_info_reports_the_cluster_and_a_lost_core(run_module, neo4j_bolt):
    healthy = run_module("neo4j_info", neo4j_bolt.connection())
    assert not healthy.failed, healthy.msg
    assert [s["name"] for s in healthy["servers"]] == ["neo4j-core-0", "neo4j-core-1",
                                                       "neo4j-core-2"]
    database = healthy["databases"]["neo4j"]
    assert (database["online_primaries"], database["requested_primaries"]) == (3, 3)
    assert database["writer"] and not database["degraded"]
    assert not healthy["core_loss"] and healthy["problems"] == []
    neo4j_bolt.fail_server("neo4j-core-1")
    lost = run_module("neo4j_info", neo4j_bolt.connection())
    assert lost["core_loss"] and [s["name"] for s in lost["failed_servers"]] == ["neo4j-core-1"]
    assert lost["databases"]["neo4j"]["online_primaries"] == 2
    assert any("neo4j-core-1" in p and "Unavailable" in p for p in lost["problems"])
    # every statement ran on the system database with a transaction timeout
    assert {db for db, _s, _p in neo4j_bolt.statements} == {"system"}
    assert set(neo4j_bolt.timeouts) == {10000}  # milliseconds on the wire
    assert neo4j_bolt.writes() == []


def test_refused_unreachable_and_silent_servers_are_told_apart(run_module, neo4j_bolt,
                                                               closed_port):
    refused = run_module("neo4j_info", neo4j_bolt.connection(password="not-the-password"))
    assert refused.failed and "refused the credentials of user neo4j" in refused.msg
    assert "cannot reach" not in refused.msg
    assert "not-the-password" not in json.dumps(dict(refused))
    unreachable = run_module("neo4j_info", neo4j_bolt.connection(
        uri=f"bolt://127.0.0.1:{closed_port()}", connect_timeout=2))
    assert unreachable.failed and unreachable.msg.startswith("cannot reach Neo4j at bolt://")
    neo4j_bolt.hang["SHOW SERVERS"] = 6
    silent = run_module("neo4j_info", neo4j_bolt.connection(timeout=1, connect_timeout=1))
    assert silent.failed and "gave no answer within 4.0 s while listing the servers" in silent.msg
    neo4j_bolt.hang.clear()
    bad = run_module("neo4j_info", neo4j_bolt.connection(uri="redis://127.0.0.1:7687"))
    assert bad.failed and "is not usable" in bad.msg
    assert neo4j_bolt.writes() == []


def test_database_read_only_then_back(run_module, neo4j_bolt):
    args = dict(neo4j_bolt.connection(), name="neo4j", access="read-only")
    first, real, _again, _last = four_steps(run_module, "neo4j_database", args, neo4j_bolt)
    assert first["statements"] == ["ALTER DATABASE $name SET ACCESS READ ONLY"]
    assert first["diff"] == {"before": {"state": "online", "access": "read-write",
                                        "primaries": 3, "secondaries": 0},
                             "after": {"state": "online", "access": "read-only",
                                       "primaries": 3, "secondaries": 0}}
    assert real["database"]["access"] == "read-only"
    assert neo4j_bolt.databases["neo4j"]["access"] == "read-only"
    rows = independent(neo4j_bolt, "SHOW DATABASES YIELD name, access")
    assert {r["access"] for r in rows if r["name"] == "neo4j"} == {"read-only"}
    back = run_module("neo4j_database", dict(args, access="read-write"))
    assert back.changed and neo4j_bolt.databases["neo4j"]["access"] == "read-write"


def test_database_stop_and_start_waits_until_online(run_module, neo4j_bolt):
    stop = dict(neo4j_bolt.connection(), name="neo4j", state="offline")
    four_steps(run_module, "neo4j_database", stop, neo4j_bolt)
    rows = independent(neo4j_bolt, "SHOW DATABASES YIELD name, currentStatus")
    assert {r["currentStatus"] for r in rows} == {"offline"}
    start = dict(stop, state="online")
    results = four_steps(run_module, "neo4j_database", start, neo4j_bolt)
    # the stand-in shows a started database as `starting` for two reads: the module waited
    assert results[1]["database"]["status"] == "online"
    assert results[1]["database"]["online_primaries"] == 3
    assert results[1]["timings"]["wait"] > 0
    missing = run_module("neo4j_database", dict(start, name="nope"))
    assert missing.failed and "database nope does not exist (the cluster has neo4j)" in missing.msg


def test_server_replacement_enable_deallocate_drop(run_module, neo4j_bolt):
    failed = neo4j_bolt.fail_server("neo4j-core-1")
    remove = dict(neo4j_bolt.connection(), server=failed, state="absent")
    # No enabled server can take its databases: Neo4j's DRYRUN refuses, and so does the module,
    # in check mode as in a real run, without changing anything.
    for check in (True, False):
        refused = run_module("neo4j_server", remove, check=check)
        assert refused.failed and "not enough enabled servers" in refused.msg, refused.msg
    assert neo4j_bolt.writes() == []

    new = neo4j_bolt.add_server("neo4j-core-3")  # the replacement pod joined: a free server
    enable = dict(neo4j_bolt.connection(), server="neo4j-core-3", state="enabled")
    first = four_steps(run_module, "neo4j_server", enable, neo4j_bolt)[0]
    assert first["statements"] == ["ENABLE SERVER $server"]
    assert first["diff"] == {"before": {"state": "Free"}, "after": {"state": "Enabled"}}
    assert neo4j_bolt.servers[new]["state"] == "Enabled"

    first, real, again = four_steps(run_module, "neo4j_server", remove, neo4j_bolt)[:3]
    assert first["statements"] == ["DEALLOCATE DATABASES FROM SERVER $server",
                                   "DROP SERVER $server"]
    assert [(m["database"], m["toServerName"]) for m in first["plan"]] == [
        ("neo4j", "neo4j-core-3")]
    assert real["server"]["serverId"] == failed and again["server"] == {}
    assert failed not in neo4j_bolt.servers
    assert new in neo4j_bolt.databases["neo4j"]["allocations"]
    servers = independent(neo4j_bolt, "SHOW SERVERS YIELD name, state, health")
    assert sorted(s["name"] for s in servers) == ["neo4j-core-0", "neo4j-core-2",
                                                  "neo4j-core-3"]
    databases = independent(neo4j_bolt, "SHOW DATABASES YIELD name, currentStatus")
    assert [d["currentStatus"] for d in databases] == ["online"] * 3
    # every server statement addressed the server by its id, as a parameter
    assert all(p == {"server": failed} for _db, s, p in neo4j_bolt.statements
               if "DEALLOCATE" in s or s.startswith("DROP SERVER"))


def test_server_cordon_and_wrong_transitions(run_module, neo4j_bolt):
    cordon = dict(neo4j_bolt.connection(), server="neo4j-core-2", state="cordoned")
    four_steps(run_module, "neo4j_server", cordon, neo4j_bolt)
    assert neo4j_bolt.servers[neo4j_bolt.server_id("neo4j-core-2")]["state"] == "Cordoned"
    unknown = run_module("neo4j_server", dict(cordon, server="neo4j-core-9"))
    assert unknown.failed and "no server neo4j-core-9 in SHOW SERVERS" in unknown.msg
    neo4j_bolt.add_server("neo4j-core-4")
    free = run_module("neo4j_server", dict(cordon, server="neo4j-core-4"))
    assert free.failed and "is Free: Neo4j cannot make it cordoned" in free.msg
    assert neo4j_bolt.writes() == ["CORDON SERVER $server"]


def test_index_rebuild_of_a_failed_index(run_module, neo4j_bolt):
    neo4j_bolt.add_index("neo4j", "entity_name", "Entity", "name", state="FAILED")
    neo4j_bolt.add_index("neo4j", "doc_id", "Document", "id")
    args = dict(neo4j_bolt.connection(), database="neo4j")
    first, real, _again, _last = four_steps(run_module, "neo4j_index", args, neo4j_bolt)
    assert first["rebuilt"] == ["entity_name"]
    assert first["statements"] == [
        "DROP INDEX `entity_name`",
        "CREATE RANGE INDEX `entity_name` FOR (n:`Entity`) ON (n.`name`)"]
    # the stand-in populates a new index over three reads (0, 40, 80 %): the module waited
    assert real["indexes"]["entity_name"]["state"] == "ONLINE"
    assert real["indexes"]["entity_name"]["populationPercent"] == 100.0
    assert real["indexes"]["doc_id"]["state"] == "ONLINE"
    rows = independent(neo4j_bolt, "SHOW INDEXES YIELD name, state", database="neo4j")
    assert {r["name"]: r["state"] for r in rows} == {"doc_id": "ONLINE", "entity_name": "ONLINE"}
    assert {db for db, s, _p in neo4j_bolt.statements if "INDEX" in s} == {"neo4j"}


def test_index_refusals(run_module, neo4j_bolt):
    neo4j_bolt.add_index("neo4j", "person_key", "Person", "key", state="FAILED",
                         constraint="person_key_unique")
    args = dict(neo4j_bolt.connection(), database="neo4j")
    owned = run_module("neo4j_index", args)
    assert owned.failed and "belongs to constraint person_key_unique" in owned.msg
    missing = run_module("neo4j_index", dict(args, names=["nope"]))
    assert missing.failed and "no index nope in this database (it has person_key)" in missing.msg
    assert neo4j_bolt.writes() == []


def test_long_transactions_terminated_never_our_own(run_module, neo4j_bolt):
    slow = neo4j_bolt.add_transaction("neo4j", "MATCH (a)-[*]->(b) RETURN count(*)", 900)
    other_db = neo4j_bolt.add_transaction("system", "SHOW USERS", 1200, user="admin")
    fresh = neo4j_bolt.add_transaction("neo4j", "MATCH (n) RETURN n LIMIT 1", 2)
    args = dict(neo4j_bolt.connection(), older_than=300, databases=["neo4j"], terminate=True)
    first, real, _again, _last = (run_module("neo4j_transactions", args, check=check, diff=True)
                                  for check in (True, False, True, False))
    assert first.changed and first["selected"] == [slow] and first["terminated"] == []
    assert sorted(t["transactionId"] for t in first["transactions"]) == sorted(
        [slow, other_db, fresh])  # our own SHOW TRANSACTIONS is not listed
    assert real.changed and real["terminated"] == [
        {"transactionId": slow, "username": "app", "message": "Transaction terminated."}]
    assert sorted(neo4j_bolt.transactions) == sorted([other_db, fresh])
    assert not _again.changed and not _last.changed and _last["selected"] == []
    assert neo4j_bolt.writes() == [s for _db, s, _p in neo4j_bolt.statements
                                   if s.startswith("TERMINATE")]
    assert len(neo4j_bolt.writes()) == 1
    listed = run_module("neo4j_transactions", dict(args, databases=[], terminate=False,
                                                   older_than=1000))
    assert not listed.changed and listed["selected"] == [other_db]


def test_store_info_and_consistency_check(run_module, neo4j_standin):
    args = dict(neo4j_admin=str(neo4j_standin.admin), consistency_check=True,
                report_path=str(neo4j_standin.directory))
    in_use = run_module("neo4j_store_info", args)
    assert in_use.failed and "database neo4j is in use" in in_use.msg
    assert in_use["info"]["store_format_version"] == "block-block-1.1"
    assert not any("database check" in c for c in neo4j_standin.calls())
    neo4j_standin.running.unlink()  # stopped
    clean = run_module("neo4j_store_info", args, check=True)
    assert not clean.failed and clean["consistent"] is True and clean["report"] == []
    assert not clean["in_use"] and not clean.changed
    neo4j_standin.store.write_bytes(b"damaged store")
    damaged = run_module("neo4j_store_info", args)
    assert damaged.failed and damaged["consistent"] is False
    assert damaged["report"] == [str(neo4j_standin.directory / "inconsistencies-standin.report")]
    assert "restore the database from a backup" in damaged.msg
    assert neo4j_standin.calls()[-1] == (f"neo4j-admin database check --report-path="
                                         f"{neo4j_standin.directory} neo4j")
