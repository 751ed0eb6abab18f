"""The neo4j_* modules against a REAL Neo4j 5 cluster, where one is reachable - never run on the
project's machines (no Neo4j can run there); skipped otherwise, with the reason.

    FAILSAFE_NEO4J_URI=neo4j://core-0:7687 FAILSAFE_NEO4J_PASSWORD=... \\
        pytest tests/integration/test_neo4j_real_cluster.py

It reads the cluster, runs the check-mode forms (Neo4j's own DRYRUN DEALLOCATE), fences a
database it creates read-only and back (check -> real -> check -> real), and drops that
database again. It changes nothing else.
"""

from __future__ import annotations

import os
import uuid

import pytest

URI = os.environ.get("FAILSAFE_NEO4J_URI")
pytestmark = [
    pytest.mark.usefixtures("lab_env"),
    pytest.mark.skipif(not URI, reason="no real Neo4j 5 cluster: set FAILSAFE_NEO4J_URI (and "
                       "FAILSAFE_NEO4J_USER, FAILSAFE_NEO4J_PASSWORD) to run this scenario"),
]


@pytest.fixture
def conn():
    return dict(uri=URI, user=os.environ.get("FAILSAFE_NEO4J_USER", "neo4j"),
                password=os.environ.get("FAILSAFE_NEO4J_PASSWORD"), timeout=30)


@pytest.fixture
def scratch_database(conn):
    import neo4j  # pylint: disable=import-outside-toplevel
    name = "failsafe" + uuid.uuid4().hex[:8]
    with neo4j.GraphDatabase.driver(URI, auth=(conn["user"], conn["password"])) as driver:
        driver.execute_query("CREATE DATABASE $name WAIT", name=name, database_="system")
        try:
            yield name, driver
        finally:
            driver.execute_query("DROP DATABASE $name IF EXISTS", name=name, database_="system")


def test_real_cluster_read_and_plans(run_module, conn):
    info = run_module("neo4j_info", conn)
    assert not info.failed, info.msg
    assert info["servers"] and "system" in info["databases"]
    server = info["servers"][0]["serverId"]
    plan = run_module("neo4j_server", dict(conn, server=server, state="deallocated"), check=True)
    # Neo4j either plans the moves or says why it cannot; it never changes anything here.
    assert plan.failed or plan["statements"] in ([], ["DEALLOCATE DATABASES FROM SERVER $server"])
    listed = run_module("neo4j_transactions", dict(conn, older_than=0))
    assert not listed.failed and all("neo4j_transactions" not in (t.get("currentQuery") or "")
                                     for t in listed["transactions"])


def test_real_cluster_fence_a_scratch_database(run_module, conn, scratch_database):
    name, driver = scratch_database
    args = dict(conn, name=name, access="read-only")
    results = [run_module("neo4j_database", args, check=check)
               for check in (True, False, True, False)]
    assert [r.changed for r in results] == [True, True, False, False], results
    records = driver.execute_query("SHOW DATABASE $name YIELD access", name=name,
                                   database_="system").records
    assert {r["access"] for r in records} == {"read-only"}
