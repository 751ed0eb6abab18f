"""app_traffic on Kubernetes: kubernetes.core.k8s_scale of each region's Deployment, against
kmock, a STAND-IN for the Kubernetes API (PyPI `kmock`, its KubernetesEmulator), not a cluster.

kmock keeps objects in memory and serves the API (discovery, get, patch of /scale); it has no
controllers: nothing creates Pods and a Deployment's status never changes by itself. The test
plays the Deployment controller: a task that sets each Deployment's status to its spec's
replicas (ready, available, observed generation), as a real controller would once the Pods run,
so that k8s_scale's wait sees the Deployment ready. What kmock does not do (rollouts, Pods,
generation bumps, admission, RBAC) is not tested here: see docs/app.md.

The state is verified in kmock's object store, independently of the role.
"""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio
import yaml

pytestmark = pytest.mark.asyncio

NAMESPACE = "failsafe"
REPLICAS = 2
PLAYBOOK = "playbooks/app_traffic.yml"


def deployment(name: str, replicas: int) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NAMESPACE, "generation": 1},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "failsafe-writer", "image": "failsafe-writer:lab"}]}}}}


def ready_status(spec_replicas: int, generation) -> dict:
    return {"replicas": spec_replicas, "readyReplicas": spec_replicas,
            "availableReplicas": spec_replicas, "updatedReplicas": spec_replicas,
            "observedGeneration": generation}


async def play_the_controller(kmock, stop: asyncio.Event) -> None:
    """What the Deployment controller would do once the Pods run: status follows spec."""
    while not stop.is_set():
        for (resource, namespace, name), obj in list(kmock.objects.items()):
            if resource.plural != "deployments" or obj.deleted:
                continue
            raw = obj.raw
            wanted = ready_status(raw["spec"]["replicas"], raw["metadata"].get("generation"))
            if {k: raw.get("status", {}).get(k) for k in wanted} != wanted:
                path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"
                async with kmock.patch(path, json={"status": wanted}) as resp:
                    assert resp.status == 200
        try:
            await asyncio.wait_for(stop.wait(), 0.05)
        except asyncio.TimeoutError:
            pass


@pytest_asyncio.fixture
async def cluster(kmock, tmp_path):
    """kmock serving two Deployments (us-east at REPLICAS, us-west at 0), the controller played
    by a task, and an inventory of two application hosts on platform kubernetes."""
    kmock.resources["apps/v1/deployments"] = kmock.ResourceInfo(
        kind="Deployment", singular="deployment", namespaced=True,
        verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
        subresources={"scale", "status"})
    for region, replicas in (("us-east", REPLICAS), ("us-west", 0)):
        path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
        async with kmock.post(path, json=deployment(f"writer-{region}", replicas)) as resp:
            assert resp.status == 200, await resp.text()
    # The writers' health endpoint (a Service in front of the Pods, in a cluster): kmock serves
    # it too, "writing": "ok" once the Deployment has ready replicas (the played controller).
    for region in ("us-east", "us-west"):
        kmock[f"get /health/{region}"] << health_reaction(kmock, region)
    # A kubeconfig as an operator would have (kmock checks no token).
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
        "clusters": [{"name": "kmock", "cluster": {"server": str(kmock.url).rstrip("/")}}],
        "users": [{"name": "failsafe", "user": {"token": "kmock-accepts-any-token"}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "failsafe",
                                                   "namespace": NAMESPACE}}]}))
    inventory = tmp_path / "k8s.yml"
    inventory.write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_connection": "local",
                 "ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "children": {
            "us-east": {"hosts": {"app-k8s-us-east": None}},
            "us-west": {"hosts": {"app-k8s-us-west": None}},
            "app": {
                "vars": {"failsafe_app_platform": "kubernetes",
                         "failsafe_app_k8s_kubeconfig": str(kubeconfig),
                         "failsafe_app_k8s_namespace": NAMESPACE,
                         "failsafe_app_replicas": REPLICAS},
                "hosts": {f"app-k8s-{region}": {
                    "failsafe_region": region,
                    "failsafe_app_k8s_deployment": f"writer-{region}",
                    "failsafe_app_health_url": f"{str(kmock.url).rstrip('/')}/health/{region}"}
                    for region in ("us-east", "us-west")}}}}}))
    stop = asyncio.Event()
    controller = asyncio.create_task(play_the_controller(kmock, stop))
    try:
        yield kmock, inventory
    finally:
        stop.set()
        await controller


def writer_health(kmock, region: str) -> dict:
    ready = spec_and_status(kmock, region)[1] or 0
    return {"region": region, "writing": "ok" if ready > 0 else "failing", "ready": ready}


def health_reaction(kmock, region: str):
    """kmock calls a one-argument reaction with the request."""
    return lambda request: writer_health(kmock, region)


def spec_and_status(kmock, region: str) -> tuple:
    raw = kmock.objects["apps/v1/deployments", NAMESPACE, f"writer-{region}"].raw
    return raw["spec"]["replicas"], raw.get("status", {}).get("readyReplicas")


async def traffic(run_playbook, inventory, action, region=None, check=False) -> dict:
    extravars = {"app_traffic_action": action}
    if region:
        extravars["app_traffic_region"] = region
    runner = await asyncio.to_thread(run_playbook, PLAYBOOK, inventory=inventory,
                                     extravars=extravars, check=check)
    assert runner.status == "successful", runner.stdout_text
    for event in reversed(list(runner.events)):
        res = event.get("event_data", {}).get("res", {})
        if event.get("event") == "runner_on_ok" and "app_traffic_result" in res:
            return res["app_traffic_result"]
    raise AssertionError(runner.stdout_text)


async def wait_ready(kmock, region: str, replicas: int) -> None:
    """Until the played controller has caught up (it runs every 50 ms)."""
    for _attempt in range(200):
        if spec_and_status(kmock, region) == (replicas, replicas):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(spec_and_status(kmock, region))


async def test_role_scales_the_deployments_from_one_region_to_the_other(cluster, run_playbook):
    kmock, inventory = cluster
    await wait_ready(kmock, "us-east", REPLICAS)

    planned = await traffic(run_playbook, inventory, "stop", "us-east", check=True)
    assert planned["changed"] and set(planned["hosts"]) == {"app-k8s-us-east"}
    assert planned["hosts"]["app-k8s-us-east"]["platform"] == "kubernetes"
    assert spec_and_status(kmock, "us-east") == (REPLICAS, REPLICAS)

    done = await traffic(run_playbook, inventory, "stop", "us-east")
    assert done["changed"]
    assert int(done["hosts"]["app-k8s-us-east"]["state"]["replicas"]) == 0
    assert spec_and_status(kmock, "us-east") == (0, 0)

    for check in (True, False):
        again = await traffic(run_playbook, inventory, "stop", "us-east", check=check)
        assert not again["changed"] and spec_and_status(kmock, "us-east") == (0, 0)

    planned = await traffic(run_playbook, inventory, "start", "us-west", check=True)
    assert planned["changed"] and spec_and_status(kmock, "us-west") == (0, 0)

    done = await traffic(run_playbook, inventory, "start", "us-west")
    assert done["changed"]
    # k8s_scale waited for the Deployment to be ready (the played controller's status).
    assert spec_and_status(kmock, "us-west") == (REPLICAS, REPLICAS)
    assert int(done["hosts"]["app-k8s-us-west"]["state"]["ready_replicas"]) == REPLICAS
    # ... and the role waited for the health endpoint.
    assert done["hosts"]["app-k8s-us-west"]["health"] == {
        "region": "us-west", "writing": "ok", "ready": REPLICAS}

    for check in (True, False):
        again = await traffic(run_playbook, inventory, "start", "us-west", check=check)
        assert not again["changed"]
        assert spec_and_status(kmock, "us-west") == (REPLICAS, REPLICAS)
    assert spec_and_status(kmock, "us-east") == (0, 0)


async def test_status_reads_the_deployments_and_changes_nothing(cluster, run_playbook):
    kmock, inventory = cluster
    await wait_ready(kmock, "us-east", REPLICAS)
    result = await traffic(run_playbook, inventory, "status")
    assert not result["changed"]
    states = {host: int(info["state"]["replicas"]) for host, info in result["hosts"].items()}
    assert states == {"app-k8s-us-east": REPLICAS, "app-k8s-us-west": 0}
    assert result["hosts"]["app-k8s-us-west"]["health"]["writing"] == "failing"
    assert spec_and_status(kmock, "us-east") == (REPLICAS, REPLICAS)
    assert spec_and_status(kmock, "us-west") == (0, 0)
