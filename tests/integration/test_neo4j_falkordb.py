"""The Neo4j helper's driver plumbing (module_utils/_neo4j.py: the official driver, the
client-side deadline, error mapping, value conversion) against a REAL Bolt server that is NOT
Neo4j: FalkorDB's Bolt listener (engines/falkordb.py says what it does and does not do).

FalkorDB answers a bare `SHOW DATABASES` with Neo4j-shaped rows but fails the modules' form
(`YIELD` of Neo4j 5 cluster columns such as serverID and the topology counts) and `SHOW SERVERS`
with Neo.DatabaseError.General.UnknownError, so neo4j_info itself cannot succeed against it;
the helper is driven in-process here with the statements FalkorDB has.
Administration is tested against the Bolt stand-in (test_neo4j_standin.py), a real Neo4j 5
cluster in test_neo4j_real_cluster.py where one is reachable."""

from __future__ import annotations

import pytest
from ansible_collections.failsafe.datastores.plugins.module_utils import _neo4j


def client(connection: dict) -> _neo4j.Neo4jClient:
    params = dict((name, spec.get("default")) for name, spec in _neo4j.NEO4J_SPEC.items())
    params.update(connection)
    return _neo4j.Neo4jClient(params)


def test_driver_plumbing_against_falkordb(falkordb_bolt):
    neo = client(falkordb_bolt.connection())
    try:
        assert neo.query("RETURN 1 AS ok", database=None) == [{"ok": 1}]
        rows = neo.query("SHOW DATABASES", database="system")
        database = _neo4j.summarise_databases(rows)["falkordb"]
        assert database["status"] == "online" and database["access"] == "read-write"
        assert database["members"][0]["role"] == "primary" and not database["degraded"]
        created = neo.query("CREATE (n:Probe {name: $name}) RETURN n.name AS name",
                            {"name": "failsafe"}, database=None)
        assert created == [{"name": "failsafe"}]  # parameters travel; FalkorDB stores it
        assert neo.query("MATCH (n:Probe) RETURN count(n) AS n", database=None) == [{"n": 1}]
    finally:
        neo.close()


def test_a_server_that_answers_an_error_is_not_an_outage(falkordb_bolt, closed_port):
    neo = client(falkordb_bolt.connection())
    with pytest.raises(_neo4j.Neo4jFailure) as refused:
        neo.query(_neo4j.SHOW_SERVERS, database=None, doing="listing the servers")
    neo.close()
    assert refused.value.kind == "error", str(refused.value)
    assert "answered Neo.DatabaseError.General.UnknownError while listing the servers" in str(
        refused.value)
    with pytest.raises(_neo4j.Neo4jFailure) as gone:
        client(falkordb_bolt.connection(uri=f"bolt://127.0.0.1:{closed_port()}")).query(
            "RETURN 1 AS ok")
    assert gone.value.kind == "unreachable"
