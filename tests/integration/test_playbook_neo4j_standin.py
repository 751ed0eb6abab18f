"""playbooks/neo4j_cluster_recovery.yml and neo4j_maintenance.yml through ansible-runner, against
STAND-INS only: the scripted Bolt stand-in of a Neo4j 5 cluster (engines/neo4j_bolt_standin.py)
and kmock, an emulator of the Kubernetes API (not a cluster; see test_app_traffic_kubernetes.py).

kmock has no controllers: the test plays the StatefulSet controller (status follows spec; a
StatefulSet scaled from 0 to 1 whose PVC was deleted gets a new PVC) and the part of Neo4j that
is not an API call: the replacement pod starting with an empty volume joins the cluster as a
Free server in the Bolt stand-in. The state is then checked in kmock's object store and in the
stand-in's model, not through the playbook's own output.
"""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio
import yaml

pytestmark = pytest.mark.asyncio

NAMESPACE = "medkg"
MEMBERS = ("neo4j-core-0", "neo4j-core-1", "neo4j-core-2")
RECOVERY = "playbooks/neo4j_cluster_recovery.yml"


def statefulset(name: str) -> dict:
    labels = {"app": "neo4j", "member": name}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": NAMESPACE, "generation": 1},
            "spec": {"replicas": 1, "serviceName": "neo4j", "selector": {"matchLabels": labels},
                     "updateStrategy": {"type": "RollingUpdate"},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "neo4j", "image": "neo4j:5-enterprise"}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "data"}}]}}


def pvc(member: str, volume: str = "original") -> dict:
    """kmock gives objects no uid: the label tells the original volume from a new one."""
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": f"data-{member}-0", "namespace": NAMESPACE,
                         "labels": {"volume": volume}},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "10Gi"}}}}


def live(kmock, plural: str, name: str):
    """The object's body in kmock's store, or None when absent or deleted."""
    for (resource, namespace, found), obj in list(kmock.objects.items()):
        if resource.plural == plural and namespace == NAMESPACE and found == name \
                and not obj.deleted:
            return obj.raw
    return None


async def play_the_controllers(kmock, bolt, joined: list, stop: asyncio.Event) -> None:
    """StatefulSet controller (status follows spec; a missing PVC is created again) and the
    Neo4j server that starts in the new pod (joins as Free when its volume is new)."""
    while not stop.is_set():
        for member in MEMBERS:
            raw = live(kmock, "statefulsets", member)
            if raw is None:
                continue
            replicas = raw["spec"]["replicas"]
            if replicas and live(kmock, "persistentvolumeclaims", f"data-{member}-0") is None:
                async with kmock.post(f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims",
                                      json=pvc(member, "new")) as resp:
                    assert resp.status == 200, await resp.text()
                joined.append(bolt.add_server(f"{member}-replacement"))
            wanted = {"replicas": replicas, "readyReplicas": replicas,
                      "updatedReplicas": replicas, "currentRevision": "rev-1",
                      "updateRevision": "rev-1",
                      "observedGeneration": raw["metadata"].get("generation")}
            if {k: raw.get("status", {}).get(k) for k in wanted} != wanted:
                path = f"/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/{member}/status"
                async with kmock.patch(path, json={"status": wanted}) as resp:
                    assert resp.status == 200
        try:
            await asyncio.wait_for(stop.wait(), 0.05)
        except asyncio.TimeoutError:
            pass


@pytest_asyncio.fixture
async def cluster(kmock, neo4j_bolt, tmp_path):
    kmock.resources["apps/v1/statefulsets"] = kmock.ResourceInfo(
        kind="StatefulSet", singular="statefulset", namespaced=True,
        verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
        subresources={"scale", "status"})
    kmock.resources["v1/persistentvolumeclaims"] = kmock.ResourceInfo(
        kind="PersistentVolumeClaim", singular="persistentvolumeclaim", namespaced=True,
        verbs={"get", "list", "watch", "create", "update", "patch", "delete"})
    for member in MEMBERS:
        async with kmock.post(f"/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets",
                              json=statefulset(member)) as resp:
            assert resp.status == 200, await resp.text()
        async with kmock.post(f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims",
                              json=pvc(member)) as resp:
            assert resp.status == 200, await resp.text()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
        "clusters": [{"name": "kmock", "cluster": {"server": str(kmock.url).rstrip("/")}}],
        "users": [{"name": "failsafe", "user": {"token": "kmock-accepts-any-token"}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "failsafe",
                                                   "namespace": NAMESPACE}}]}))
    inventory = tmp_path / "neo4j.yml"
    regions = {"neo4j-core-0": "us-east", "neo4j-core-1": "us-east", "neo4j-core-2": "us-west"}
    inventory.write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_connection": "local",
                 "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                 "failsafe_k8s_kubeconfig": str(kubeconfig)},
        "children": {
            "us-east": {"hosts": {h: None for h, r in regions.items() if r == "us-east"}},
            "us-west": {"hosts": {h: None for h, r in regions.items() if r == "us-west"}},
            "neo4j": {
                "vars": {"failsafe_neo4j_uri": neo4j_bolt.uri,
                         "failsafe_neo4j_user": neo4j_bolt.user,
                         "failsafe_neo4j_password": neo4j_bolt.password,
                         "failsafe_neo4j_k8s_namespace": NAMESPACE},
                "hosts": {member: {"failsafe_region": regions[member],
                                   "failsafe_neo4j_server_name": member,
                                   "failsafe_neo4j_k8s_statefulset": member,
                                   "failsafe_neo4j_k8s_pvc": f"data-{member}-0"}
                          for member in MEMBERS}}}}}))
    joined: list = []
    stop = asyncio.Event()
    controller = asyncio.create_task(play_the_controllers(kmock, neo4j_bolt, joined, stop))
    try:
        yield kmock, neo4j_bolt, inventory, joined
    finally:
        stop.set()
        await controller


async def run(run_playbook, inventory, check=False, limit=None, **extravars):
    return await asyncio.to_thread(run_playbook, RECOVERY, inventory=inventory,
                                   extravars=extravars or None, check=check, limit=limit)


def stats(runner) -> dict:
    for event in runner.events:
        if event.get("event") == "playbook_on_stats":
            return (event["event_data"].get("artifact_data") or {}).get("failsafe_run") or {}
    return {}


async def test_recovery_replaces_the_failed_member(cluster, run_playbook):
    kmock, bolt, inventory, joined = cluster
    failed = bolt.fail_server("neo4j-core-1")

    planned = await run(run_playbook, inventory, check=True)
    assert planned.status == "successful", planned.stdout_text[-3000:]
    assert "Replacing neo4j-core-1 (neo4j-core-1)" in planned.stdout_text
    assert "Would delete PersistentVolumeClaim medkg/data-neo4j-core-1-0" in planned.stdout_text
    assert bolt.writes() == [] and joined == []
    assert live(kmock, "statefulsets", "neo4j-core-1")["spec"]["replicas"] == 1
    assert live(kmock, "persistentvolumeclaims", "data-neo4j-core-1-0")["metadata"]["labels"] == {
        "volume": "original"}

    done = await run(run_playbook, inventory, limit="us-west")  # -l us-west works too
    assert done.status == "successful", done.stdout_text[-4000:]
    (new,) = joined
    assert bolt.writes() == ["ENABLE SERVER $server", "DEALLOCATE DATABASES FROM SERVER $server",
                             "DROP SERVER $server"]
    assert failed not in bolt.servers and bolt.servers[new]["state"] == "Enabled"
    allocations = bolt.databases["neo4j"]["allocations"]
    assert new in allocations and failed not in allocations and len(allocations) == 3
    new_pvc = live(kmock, "persistentvolumeclaims", "data-neo4j-core-1-0")
    assert new_pvc["metadata"]["labels"] == {"volume": "new"}  # deleted, then made anew
    assert live(kmock, "statefulsets", "neo4j-core-1")["status"]["readyReplicas"] == 1
    record = stats(done)
    assert record["failed_server"] == "neo4j-core-1" and record["replacement"] == new
    assert "Recovered: 3 servers available" in done.stdout_text

    again = await run(run_playbook, inventory)
    assert again.status == "successful", again.stdout_text[-3000:]
    assert "The cluster is healthy." in again.stdout_text
    assert len(bolt.writes()) == 3 and joined == [new]


async def test_recovery_refusals_change_nothing(cluster, run_playbook):
    kmock, bolt, inventory, joined = cluster
    bolt.fail_server("neo4j-core-1")
    bolt.fail_server("neo4j-core-2")
    several = await run(run_playbook, inventory)
    assert several.status == "failed"
    assert "Several servers are unavailable (neo4j-core-1, neo4j-core-2)" in several.stdout_text
    healthy = await run(run_playbook, inventory, neo4j_recovery_member="neo4j-core-0")
    assert healthy.status == "failed"
    assert "Server neo4j-core-0 is not among the unavailable ones" in healthy.stdout_text
    assert bolt.writes() == [] and joined == []
    for member in MEMBERS:
        assert live(kmock, "statefulsets", member)["spec"]["replicas"] == 1
        assert live(kmock, "persistentvolumeclaims", f"data-{member}-0") is not None


async def test_maintenance_terminates_rebuilds_and_checks(
        neo4j_bolt, neo4j_standin, tmp_path, run_playbook):
    """neo4j_maintenance.yml: the Bolt stand-in for the cluster, the stand-in neo4j-admin for
    the store (the test links the two: the database counts as stopped in the store once the
    run has stopped it; the stand-in neo4j-admin itself cannot know)."""
    neo4j_bolt.add_index("neo4j", "entity_name", "Entity", "name", state="FAILED")
    slow = neo4j_bolt.add_transaction("neo4j", "MATCH p=()-[*]->() RETURN p", 1800)
    neo4j_standin.running.unlink()
    inventory = tmp_path / "neo4j.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"neo4j": {
        "vars": {"failsafe_neo4j_uri": neo4j_bolt.uri, "failsafe_neo4j_user": neo4j_bolt.user,
                 "failsafe_neo4j_password": neo4j_bolt.password},
        "hosts": {"neo4j-core-0": {"ansible_connection": "local",
                                   "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                                   "failsafe_neo4j_admin": str(neo4j_standin.admin)}}}}}}))
    ev = {"neo4j_maintenance_consistency_check": True,
          "neo4j_maintenance_report_path": str(neo4j_standin.directory)}
    playbook = "playbooks/neo4j_maintenance.yml"
    planned = await asyncio.to_thread(run_playbook, playbook, inventory=inventory, extravars=ev,
                                      check=True)
    assert planned.status == "successful", planned.stdout_text[-3000:]
    assert neo4j_bolt.writes() == [] and slow in neo4j_bolt.transactions
    done = await asyncio.to_thread(run_playbook, playbook, inventory=inventory, extravars=ev)
    assert done.status == "successful", done.stdout_text[-3000:]
    writes = [w.split(" /* ")[0] for w in neo4j_bolt.writes()]  # without the marker comment
    assert writes == [
        "TERMINATE TRANSACTIONS $ids YIELD transactionId, username, message",
        "DROP INDEX `entity_name`",
        "CREATE RANGE INDEX `entity_name` FOR (n:`Entity`) ON (n.`name`)",
        "STOP DATABASE $name", "START DATABASE $name"]
    assert slow not in neo4j_bolt.transactions
    assert neo4j_bolt.indexes["neo4j", "entity_name"]["state"] == "ONLINE"
    assert neo4j_bolt.databases["neo4j"]["requested"] == "online"
    assert any(c.startswith("neo4j-admin database check") for c in neo4j_standin.calls())
    assert "1 indexes ONLINE, 1 transactions terminated, 1 indexes rebuilt" in done.stdout_text
