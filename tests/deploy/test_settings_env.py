"""Every setting a service reads is configured in compose and in Kubernetes, with values its Settings accept.

A new field in a service's Settings makes these tests fail until compose and the kustomize base carry it
(or, for an optional setting whose absence means "off", until it is listed as deliberately unset).
"""

from __future__ import annotations

import pytest
from pydantic_settings import BaseSettings

from tests.deploy.manifests import (
    COMPUTED,
    K8S,
    SERVICES,
    UNSET_ANNOTATION,
    Service,
    by_kind,
    compose,
    compose_env,
    container_env,
    env_file,
    env_names,
    expand,
    render,
    settings_class,
)

IDS = [s.name for s in SERVICES]


def _missing(cls: type[BaseSettings], present: set[str], unset: set[str]) -> list[str]:
    return sorted(name for name in env_names(cls) if name not in present and name not in unset)


def _wrongly_unset(cls: type[BaseSettings], unset: set[str]) -> list[str]:
    """Only a setting whose absence means something (None: off; a factory: computed per process, like a
    hostname) may be left out on purpose; never a computed secret, whose factory holds a development value."""
    names = env_names(cls)
    fields = dict(zip(names, cls.model_fields.values(), strict=True))

    def allowed(name: str) -> bool:
        if names[name] is None:
            return True
        return names[name] is COMPUTED and "Secret" not in str(fields[name].annotation)

    return sorted(name for name in unset if name not in names or not allowed(name))


def _validated(cls: type[BaseSettings], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> BaseSettings:
    for name in env_names(cls):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings: BaseSettings = cls(_env_file=None)  # type: ignore[call-arg]
    return settings


@pytest.mark.parametrize("service", SERVICES, ids=IDS)
def test_compose_sets_every_setting(service: Service) -> None:
    cls = settings_class(service)
    spec = compose()["services"][service.name]
    unset = set(spec.get("x-unset-settings", []))
    missing = _missing(cls, set(compose_env(service.name)), unset)
    assert not missing, f"deploy/compose.yaml service {service.name} lacks {missing}"
    assert not _wrongly_unset(cls, unset), (
        f"{service.name}: x-unset-settings may list only None-default or computed settings"
    )


@pytest.mark.parametrize("service", SERVICES, ids=IDS)
def test_compose_values_are_accepted_by_settings(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    cls = settings_class(service)
    env = {
        k: v.split(":-", 1)[1].rstrip("}") if v.startswith("${") else v for k, v in compose_env(service.name).items()
    }
    settings = _validated(cls, env, monkeypatch)
    assert getattr(settings, "http_host") == "0.0.0.0"  # noqa: B009 - reachable from other containers
    assert getattr(settings, "http_port") == service.port  # noqa: B009
    assert f"@postgres:5432/{service.db_role}" in getattr(settings, "database_url")  # noqa: B009


@pytest.mark.parametrize("overlay", ["dev", "prod"])
@pytest.mark.parametrize("service", SERVICES, ids=IDS)
def test_kubernetes_sets_every_setting(service: Service, overlay: str) -> None:
    cls = settings_class(service)
    docs = render(overlay)
    deployment = by_kind(docs, "Deployment")[service.name]
    env = container_env(docs, deployment["spec"]["template"]["spec"])
    unset = {n for n in deployment["metadata"].get("annotations", {}).get(UNSET_ANNOTATION, "").split(",") if n}
    missing = _missing(cls, set(env), unset)
    assert not missing, f"Deployment {service.name} ({overlay}) lacks {missing}"
    assert not _wrongly_unset(cls, unset)
    job = by_kind(docs, "Job")[f"{service.name}-migrate"]
    job_env = container_env(docs, job["spec"]["template"]["spec"])
    assert f"{service.prefix}DATABASE_URL" in job_env


@pytest.mark.parametrize("service", SERVICES, ids=IDS)
def test_dev_overlay_values_are_accepted_by_settings(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    cls = settings_class(service)
    docs = render("dev")
    deployment = by_kind(docs, "Deployment")[service.name]
    env = expand(container_env(docs, deployment["spec"]["template"]["spec"]))
    settings = _validated(cls, env, monkeypatch)
    url = getattr(settings, "database_url")  # noqa: B009
    assert url == f"postgresql+asyncpg://{service.db_role}:{service.db_role}-dev@oneclass-pg-rw:5432/{service.db_role}"
    assert "$(" not in url
    assert getattr(settings, "amqp_url").startswith("amqp://oneclass:")  # noqa: B009


# Settings whose deployed value differs on purpose from the local-development default in the code.
DEPLOYMENT_OVERRIDES = {
    "ORDERS_HTTP_HOST", "ORDERS_UPLOAD_DIR", "ORDERS_REDIS_URL",
    "PAYMENTS_HTTP_HOST", "PAYMENTS_PUBLIC_BASE_URL", "PAYMENTS_RETURN_URL",
    "PAYMENTS_STRIPE_API_BASE", "PAYMENTS_PAYNOW_API_BASE", "PAYMENTS_ECOCASH_API_BASE",
    "NOTIFICATIONS_HTTP_HOST", "NOTIFICATIONS_REDIS_URL", "NOTIFICATIONS_PUBLIC_BASE_URL",
    "NOTIFICATIONS_TELONE_BASE_URL", "NOTIFICATIONS_ECONET_BASE_URL", "NOTIFICATIONS_GENERIC_SMS_BASE_URL",
    "NOTIFICATIONS_WHATSAPP_BASE_URL", "NOTIFICATIONS_SMTP_HOST", "NOTIFICATIONS_SMTP_PORT",
    "NOTIFICATIONS_SMTP_USE_TLS",
    "MIGRATIONS_HTTP_HOST", "MIGRATIONS_SOURCE_ROOT", "MIGRATIONS_LOG_DIR",
}  # fmt: skip


@pytest.mark.parametrize("service", SERVICES, ids=IDS)
def test_deployed_values_follow_the_code_defaults(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    """A default changed in the code must not stay pinned to its old value in settings.env."""
    cls = settings_class(service)
    pinned = env_file(K8S / "base" / service.name / "settings.env")
    defaults = _validated(cls, {}, monkeypatch)
    deployed = _validated(cls, pinned, monkeypatch)
    names = dict(zip(env_names(cls), cls.model_fields, strict=True))
    drifted = sorted(
        env
        for env in pinned
        if env not in DEPLOYMENT_OVERRIDES and getattr(deployed, names[env]) != getattr(defaults, names[env])
    )
    assert not drifted, f"settings.env of {service.name} pins values that differ from the code's defaults: {drifted}"
