"""deploy/compose.yaml, checked statically (no container engine here): services, health, order, databases."""

from __future__ import annotations

import re

from tests.deploy.manifests import DEPLOY, ROOT, SERVICES, compose, compose_env

INFRA = {"rabbitmq", "postgres", "redis", "sandbox", "otel-collector", "jaeger", "prometheus"}


def test_the_whole_system_is_there() -> None:
    services = compose()["services"]
    assert INFRA | {s.name for s in SERVICES} <= set(services)
    assert services["migration-worker"]["deploy"]["replicas"] == 2
    assert "management" in services["rabbitmq"]["image"]


def test_each_service_waits_for_healthy_infrastructure_and_its_own_migrations() -> None:
    services = compose()["services"]
    for service in SERVICES:
        spec = services[service.name]
        depends = spec["depends_on"]
        assert depends["rabbitmq"]["condition"] == "service_healthy"
        assert depends["postgres"]["condition"] == "service_healthy"
        migrate = services[f"{service.name}-migrate"]
        assert depends[f"{service.name}-migrate"]["condition"] == "service_completed_successfully"
        assert migrate["entrypoint"] == ["alembic", "-c", f"services/{service.name}/alembic.ini", "upgrade", "head"]
        assert migrate["image"] == spec["image"]
        assert (ROOT / migrate["build"]["dockerfile"]).exists()
        assert f":{service.port}/readyz" in " ".join(spec["healthcheck"]["test"])
        assert spec["stop_signal"] == "SIGTERM"
        # one database per service, reached with its own role
        url = compose_env(service.name)[f"{service.prefix}DATABASE_URL"]
        assert re.fullmatch(rf"postgresql\+asyncpg://{service.db_role}:[^@]+@postgres:5432/{service.db_role}", url)
        assert compose_env(f"{service.name}-migrate")[f"{service.prefix}DATABASE_URL"] == url


def test_postgres_creates_a_database_and_role_per_service() -> None:
    script = compose()["configs"]["postgres-databases"]["content"]
    for service in SERVICES:
        assert f"CREATE ROLE {service.db_role} LOGIN" in script
        assert f"CREATE DATABASE {service.db_role} OWNER {service.db_role};" in script


def test_everything_a_healthcheck_or_service_needs_exists() -> None:
    data = compose()
    for name, spec in data["services"].items():
        if name in {s.name for s in SERVICES} | {"rabbitmq", "postgres", "redis", "sandbox"}:
            assert spec.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name, config in data["configs"].items():
        if "file" in config:
            assert (DEPLOY / config["file"]).exists(), f"config {name}: {config['file']} is missing"
    # traces reach the viewer: services → collector → jaeger
    assert compose_env("orders")["OTEL_EXPORTER"] == "otlp"
    assert compose_env("orders")["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://otel-collector:")


def test_the_sandbox_posts_back_to_the_services_containers() -> None:
    env = compose_env("sandbox")
    callbacks = {k: v for k, v in env.items() if k.endswith(("_URL",)) and k != "SANDBOX_PUBLIC_BASE_URL"}
    assert callbacks
    for name, url in callbacks.items():
        assert url.startswith(("http://payments:8001/", "http://notifications:8002/")), (name, url)
