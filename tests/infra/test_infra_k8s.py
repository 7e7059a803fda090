"""infra/k8s: every manifest parses and carries what the cluster needs to run the pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
K8S = INFRA / "k8s"
Manifests = dict[tuple[str, str], dict[str, Any]]


def _container(pod_spec: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod_spec["containers"]
    return container


def test_every_manifest_has_api_version_kind_and_name(k8s_docs: list[dict[str, Any]]) -> None:
    for doc in k8s_docs:
        assert doc.get("apiVersion") and doc.get("kind"), doc
        if doc["kind"] != "Kustomization":
            assert doc["metadata"]["name"], doc


def test_kustomization_lists_every_manifest_file() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present
    assert {img["name"] for img in kustomization["images"]} == {"stf-cpu", "stf-gpu"}


def test_dask_cluster_has_scheduler_service_and_cpu_workers(k8s_by_kind: Manifests) -> None:
    cluster = k8s_by_kind[("DaskCluster", "stf")]
    assert cluster["apiVersion"] == "kubernetes.dask.org/v1"
    scheduler = _container(cluster["spec"]["scheduler"]["spec"])
    assert scheduler["args"][:2] == ["dask", "scheduler"]
    ports = {p["port"] for p in cluster["spec"]["scheduler"]["service"]["ports"]}
    assert 8786 in ports
    worker = _container(cluster["spec"]["worker"]["spec"])
    assert worker["image"] == "stf-cpu"
    assert worker["args"][:2] == ["dask", "worker"]
    assert "nvidia.com/gpu" not in worker["resources"].get("limits", {})


def test_gpu_worker_group_requests_one_gpu_and_advertises_it(k8s_by_kind: Manifests) -> None:
    group = k8s_by_kind[("DaskWorkerGroup", "stf-gpu")]
    assert group["spec"]["cluster"] == "stf"
    pod = group["spec"]["worker"]["spec"]
    worker = _container(pod)
    assert worker["image"] == "stf-gpu"
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    args = worker["args"]
    assert args[args.index("--resources") + 1] == "GPU=1"
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])


def test_gpu_node_selector_matches_terraform_pool_label(k8s_by_kind: Manifests) -> None:
    pod = k8s_by_kind[("DaskWorkerGroup", "stf-gpu")]["spec"]["worker"]["spec"]
    ((key, value),) = pod["nodeSelector"].items()
    assert f'"{key}" = "{value}"' in (INFRA / "terraform" / "gpu.tf").read_text()


def test_autoscaler_bounds_the_cpu_group(k8s_by_kind: Manifests) -> None:
    spec = k8s_by_kind[("DaskAutoscaler", "stf")]["spec"]
    assert spec["cluster"] == "stf"
    assert 0 <= spec["minimum"] <= spec["maximum"]


def test_every_dask_pod_gets_the_gdal_configmap(k8s_by_kind: Manifests) -> None:
    cluster = k8s_by_kind[("DaskCluster", "stf")]["spec"]
    group = k8s_by_kind[("DaskWorkerGroup", "stf-gpu")]["spec"]
    pods = [cluster["scheduler"]["spec"], cluster["worker"]["spec"], group["worker"]["spec"]]
    for pod in pods:
        refs = [e["configMapRef"]["name"] for e in _container(pod)["envFrom"]]
        assert refs == ["stf-gdal-env"]
        assert pod["serviceAccountName"] == "stf-runner"
    assert ("ConfigMap", "stf-gdal-env") in k8s_by_kind


def test_prefect_worker_polls_the_configured_kubernetes_pool(k8s_by_kind: Manifests) -> None:
    settings = k8s_by_kind[("ConfigMap", "stf-prefect")]["data"]
    assert settings["PREFECT_API_URL"].endswith("/api")
    deployment = k8s_by_kind[("Deployment", "prefect-worker")]
    pod = deployment["spec"]["template"]["spec"]
    args = _container(pod)["args"]
    assert args[:3] == ["prefect", "worker", "start"]
    assert args[args.index("--pool") + 1] == "$(STF_WORK_POOL)"
    assert args[args.index("--type") + 1] == "kubernetes"
    assert settings["STF_WORK_POOL"]


def test_prefect_worker_may_manage_jobs_and_read_pods(k8s_by_kind: Manifests) -> None:
    pod = k8s_by_kind[("Deployment", "prefect-worker")]["spec"]["template"]["spec"]
    binding = k8s_by_kind[("RoleBinding", "prefect-worker")]
    assert binding["subjects"][0]["name"] == pod["serviceAccountName"]
    assert ("ServiceAccount", pod["serviceAccountName"]) in k8s_by_kind
    rules = k8s_by_kind[("Role", binding["roleRef"]["name"])]["rules"]
    granted = {(res, verb) for r in rules for res in r["resources"] for verb in r["verbs"]}
    needed = {("jobs", "create"), ("jobs", "delete"), ("pods", "watch"), ("pods/log", "get")}
    assert needed <= granted


def test_cpu_image_in_kustomization_and_flow_run_setting_agree(k8s_by_kind: Manifests) -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    cpu = next(img for img in kustomization["images"] if img["name"] == "stf-cpu")
    image = k8s_by_kind[("ConfigMap", "stf-prefect")]["data"]["STF_IMAGE"]
    assert image == f"{cpu['newName']}:{cpu['newTag']}"


def test_scheduler_address_in_region_files_names_the_cluster_service() -> None:
    regions = REPO / "flows" / "regions"
    addresses = {
        (yaml.safe_load(p.read_text()).get("compute") or {}).get("scheduler")
        for p in regions.glob("*.yaml")
    } - {None}
    for address in addresses:
        assert address == "tcp://stf-scheduler.stf.svc.cluster.local:8786"


def test_dask_worker_pods_mount_the_pipeline_worker_environment(k8s_by_kind: Manifests) -> None:
    from pipeline.fuse.cluster import worker_environ

    config = yaml.safe_load(k8s_by_kind[("ConfigMap", "stf-dask-config")]["data"]["stf.yaml"])
    environ = config["distributed"]["nanny"]["pre-spawn-environ"]
    assert {k: str(v) for k, v in environ.items()} == {
        k: str(v) for k, v in worker_environ().items()
    }
    cluster = k8s_by_kind[("DaskCluster", "stf")]["spec"]
    group = k8s_by_kind[("DaskWorkerGroup", "stf-gpu")]["spec"]
    for pod in (cluster["worker"]["spec"], group["worker"]["spec"]):
        volumes = {v["name"]: v["configMap"]["name"] for v in pod["volumes"]}
        mounts = {m["name"]: m["mountPath"] for m in _container(pod)["volumeMounts"]}
        assert volumes == {"dask-config": "stf-dask-config"}
        assert mounts == {"dask-config": "/etc/dask"}  # a folder Dask reads its config from
