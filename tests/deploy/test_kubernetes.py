"""The kustomize overlays render, validate (core kinds: kubernetes-validate; operators' and KEDA's kinds:
the JSON schemas in deploy/schemas) and say what the operations issue asks for."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from contracts.migrations import LoadBatch, StartJob
from migration_worker.entrypoints.messaging.subscriptions import CONSUMER as WORKER_CONSUMER
from notifications.domain.routing import ROUTES
from notifications.entrypoints.messaging.subscriptions import CONSUMER as NOTIFICATIONS_CONSUMER
from servicekit.topology import Naming, main_queue

from tests.deploy.manifests import (
    OVERLAYS,
    ROOT,
    SCHEMAS,
    SERVICES,
    by_kind,
    container_env,
    render,
)

K8S_VERSION = "1.33.0"
CRD_GROUPS = ("rabbitmq.com", "postgresql.cnpg.io", "keda.sh")
Doc = dict[str, Any]


@cache
def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    group, version = api_version.split("/")
    path = SCHEMAS / group / f"{kind.lower()}_{version}.json"
    assert path.exists(), f"no schema kept for {kind} ({api_version}) at {path.relative_to(ROOT)}"
    schema: dict[str, Any] = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def _is_crd(doc: Doc) -> bool:
    return str(doc["apiVersion"]).split("/")[0] in CRD_GROUPS


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_manifest_validates(overlay: str) -> None:
    failures: list[str] = []
    for doc in render(overlay):
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            if _is_crd(doc):
                jsonschema.validate(doc, crd_schema(doc["apiVersion"], doc["kind"]))
            else:
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as exc:
            failures.append(f"{name}: {exc}")
    assert not failures, "\n".join(failures)


def test_crd_schemas_refuse_a_typo() -> None:
    """The kept schemas are strict enough to catch a misspelt field, not just any object."""
    scaled = next(d for d in render("dev") if d["kind"] == "ScaledObject")
    broken = json.loads(json.dumps(scaled))
    broken["spec"]["maxReplicas"] = broken["spec"].pop("maxReplicaCount")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, crd_schema(broken["apiVersion"], broken["kind"]))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_deployment_is_production_shaped(overlay: str) -> None:
    docs = render(overlay)
    deployments, pdbs = by_kind(docs, "Deployment"), by_kind(docs, "PodDisruptionBudget")
    for service in SERVICES:
        deployment = deployments[service.name]
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["ports"][0]["containerPort"] == service.port
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["topologySpreadConstraints"], service.name
        assert pod["terminationGracePeriodSeconds"] >= 30
        labels = deployment["spec"]["selector"]["matchLabels"]
        assert any(p["spec"]["selector"]["matchLabels"] == labels for p in pdbs.values()), service.name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_migration_job_per_service_runs_its_alembic(overlay: str) -> None:
    jobs = by_kind(render(overlay), "Job")
    for service in SERVICES:
        job = jobs[f"{service.name}-migrate"]
        command = job["spec"]["template"]["spec"]["containers"][0]["command"]
        assert command[:3] == ["alembic", "-c", f"services/{service.name}/alembic.ini"]
        assert command[3:] == ["upgrade", "head"]
        assert (ROOT / command[2]).exists(), f"{command[2]} does not exist"
        assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"


def test_scaling_engines_per_service() -> None:
    docs = render("prod")
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in by_kind(docs, "HorizontalPodAutoscaler").values()}
    assert set(hpas) == {"orders", "payments"}
    for hpa in hpas.values():
        assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in by_kind(docs, "ScaledObject").values()}
    assert set(scaled) == {"migration-worker", "notifications"}
    auths = by_kind(docs, "TriggerAuthentication")
    for target, obj in scaled.items():
        for trigger in obj["spec"]["triggers"]:
            assert trigger["type"] == "rabbitmq"
            assert trigger["authenticationRef"]["name"] in auths, target
    # KEDA owns these replica counts: an HPA on the same Deployment would fight it.
    assert not set(scaled) & set(hpas)


def _keda_regex(target: str) -> re.Pattern[str]:
    scaled = next(
        s for s in by_kind(render("prod"), "ScaledObject").values() if s["spec"]["scaleTargetRef"]["name"] == target
    )
    return re.compile(scaled["spec"]["triggers"][0]["metadata"]["queueName"])


def test_keda_counts_the_work_queues_and_not_their_retry_or_parking_queues() -> None:
    worker_queues = _declared_queues()["migration-worker"]
    notification_queues = _declared_queues()["notifications"]
    for target, queues in (("migration-worker", worker_queues), ("notifications", notification_queues)):
        regex = _keda_regex(target)
        for queue in queues:
            assert regex.fullmatch(queue), (target, queue)
            assert not regex.fullmatch(Naming.parking_queue(queue))
            assert not regex.fullmatch(Naming.retry_queue(queue, 1000))
    assert not any(_keda_regex("notifications").fullmatch(q) for q in worker_queues)
    assert not any(_keda_regex("migration-worker").fullmatch(q) for q in notification_queues)


def _declared_queues() -> dict[str, set[str]]:
    """The work queues the two KEDA-scaled services really declare, named as servicekit names them."""
    naming = Naming("")
    return {
        "migration-worker": {
            naming.queue(WORKER_CONSUMER, f"{m.event_type()}.v{m.version}") for m in (StartJob, LoadBatch)
        },
        "notifications": {
            naming.queue(NOTIFICATIONS_CONSUMER, f"{r.message.event_type()}.v{r.message.version}") for r in ROUTES
        },
    }


def test_topology_declares_only_queues_the_services_consume() -> None:
    declared = set().union(*_declared_queues().values())
    queues = {q["spec"]["name"] for q in by_kind(render("prod"), "Queue").values()}
    work = {q for q in queues if not q.endswith(".parking")}
    assert work <= declared, work - declared
    assert {Naming.parking_queue(q) for q in work} <= queues


def test_topology_queues_match_what_the_services_declare() -> None:
    """Queue CRs and servicekit declare the same queue: different arguments would make one side fail."""
    docs = render("prod")
    delivery_limit = int(by_kind(docs, "ConfigMap")[_shared_env_name(docs)]["data"]["DELIVERY_LIMIT"])
    naming = Naming("")
    queues = [q for q in by_kind(docs, "Queue").values() if not q["spec"]["name"].endswith(".parking")]
    assert queues
    for queue in queues:
        name = queue["spec"]["name"]
        _consumer, routing_key = name.split(".", 1)
        declared = main_queue(naming, name, routing_key, delivery_limit)
        assert queue["spec"]["type"] == "quorum"
        assert queue["spec"]["arguments"] == {k: v for k, v in declared.arguments.items() if k != "x-queue-type"}
    exchanges = {e["spec"]["name"]: e["spec"]["type"] for e in by_kind(docs, "Exchange").values()}
    assert exchanges == {naming.events_exchange: "topic", naming.dead_letter_exchange: "direct"}


def _shared_env_name(docs: tuple[Doc, ...]) -> str:
    return next(n for n in by_kind(docs, "ConfigMap") if n.startswith("oneclass-shared-env"))


def test_brokers_and_databases_come_from_operators() -> None:
    docs = render("prod")
    (rabbit,) = by_kind(docs, "RabbitmqCluster").values()
    assert rabbit["spec"]["replicas"] == 3
    (cluster,) = by_kind(docs, "Cluster").values()
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    databases = {d["spec"]["name"]: d["spec"] for d in by_kind(docs, "Database").values()}
    for service in SERVICES:
        assert databases[service.db_role]["owner"] == service.db_role
        assert roles[service.db_role]["passwordSecret"]["name"] == f"pg-{service.db_role}"
        deployment = by_kind(docs, "Deployment")[service.name]
        env = container_env(docs, deployment["spec"]["template"]["spec"])
        url = env[f"{service.prefix}DATABASE_URL"]
        assert url is not None
        assert url.startswith(f"postgresql+asyncpg://{service.db_role}:")
        assert url.endswith(f"@{cluster['metadata']['name']}-rw:5432/{service.db_role}")


def test_only_the_gateway_and_payment_webhooks_are_exposed() -> None:
    docs = render("prod")
    (ingress,) = by_kind(docs, "Ingress").values()
    backends = {
        path["path"]: path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {"/": "orders", "/api/v1/payments/webhooks": "payments"}
    policies = by_kind(docs, "NetworkPolicy")
    deny = policies["default-deny-ingress"]["spec"]
    assert deny["podSelector"] == {}
    assert "ingress" not in deny
    edge = policies["edge-from-ingress-controller"]["spec"]
    assert edge["podSelector"]["matchExpressions"][0]["values"] == ["orders", "payments"]


def test_every_secret_a_pod_or_operator_reads_exists_in_dev_and_is_documented_for_prod() -> None:
    docs = render("dev")
    secrets = {name: set(s.get("data", {})) for name, s in by_kind(docs, "Secret").items()}
    wanted: set[tuple[str, str | None]] = set()
    for doc in docs:
        _collect_secret_refs(doc, wanted)
    assert wanted
    for name, key in sorted(wanted, key=str):
        assert name in secrets, f"Secret {name} is referenced but not generated in dev"
        assert key is None or key in secrets[name], f"Secret {name} has no key {key}"
    runbook = (ROOT / "docs" / "operations.md").read_text()
    prod_names = {n for n, _ in wanted} | {"pg-backup-s3"}
    undocumented = sorted(n for n in prod_names if f"`{n}`" not in runbook)
    assert not undocumented, f"docs/operations.md does not list the prod Secrets {undocumented}"


def _collect_secret_refs(node: Any, found: set[tuple[str, str | None]]) -> None:
    if isinstance(node, dict):
        if "secretKeyRef" in node:
            found.add((node["secretKeyRef"]["name"], node["secretKeyRef"]["key"]))
        if "secretRef" in node:
            found.add((node["secretRef"]["name"], None))
        if "passwordSecret" in node:
            found.update({(node["passwordSecret"]["name"], "password"), (node["passwordSecret"]["name"], "username")})
        if "importCredentialsSecret" in node:
            found.update({(node["importCredentialsSecret"]["name"], k) for k in ("username", "password")})
        if "parameter" in node and "key" in node and "name" in node:
            found.add((node["name"], node["key"]))
        for value in node.values():
            _collect_secret_refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _collect_secret_refs(value, found)
