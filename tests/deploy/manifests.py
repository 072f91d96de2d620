"""Loading what tests/deploy checks: compose, rendered kustomize overlays, Dockerfiles, Settings env names."""

from __future__ import annotations

import base64
import importlib
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SCHEMAS = DEPLOY / "schemas"
OVERLAYS = ("dev", "prod")


@dataclass(frozen=True)
class Service:
    name: str  # directory, compose service, Deployment
    package: str  # python -m <package>
    prefix: str  # settings env prefix
    port: int
    db_role: str  # PostgreSQL role and database


SERVICES = (
    Service("orders", "orders", "ORDERS_", 8000, "orders"),
    Service("payments", "payments", "PAYMENTS_", 8001, "payments"),
    Service("notifications", "notifications", "NOTIFICATIONS_", 8002, "notifications"),
    Service("migration-worker", "migration_worker", "MIGRATIONS_", 8003, "migrations"),
)
UNSET_ANNOTATION = "oneclass.io/unset-settings"
COMPUTED = object()  # the default of a field with a default_factory: computed in each process (a hostname)


# --- settings -------------------------------------------------------------------------------------


def settings_class(service: Service) -> type[BaseSettings]:
    """The service's Settings; an ImportError here is a test failure, never a skip."""
    cls: type[BaseSettings] = importlib.import_module(f"{service.package}.settings").Settings
    return cls


def env_names(cls: type[BaseSettings]) -> dict[str, Any]:
    """Environment name → field default (COMPUTED for a default_factory), as pydantic-settings reads them."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    names: dict[str, Any] = {}
    for field_name, info in cls.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            first = alias.choices[0]
            if not isinstance(first, str):
                raise AssertionError(f"{cls.__module__}.{field_name}: alias paths are not env names")
            name = first
        elif isinstance(alias, str):
            name = alias
        elif info.alias:
            name = info.alias
        else:
            name = f"{prefix}{field_name}"
        names[name.upper()] = COMPUTED if info.default_factory is not None else info.default
    return names


# --- compose --------------------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as both compose's env_file and kustomize's configMapGenerator read them."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))
    return dict(pairs)


def compose_env(service: str) -> dict[str, str]:
    """The environment compose gives a service: its env_file entries, overridden by `environment`."""
    spec = compose()["services"][service]
    merged: dict[str, str] = {}
    files = spec.get("env_file", [])
    for item in [files] if isinstance(files, str) else files:
        merged.update(env_file(DEPLOY / (item if isinstance(item, str) else item["path"])))
    env = spec.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    merged.update({str(k): "" if v is None else str(v) for k, v in env.items()})
    return merged


# --- kubernetes -----------------------------------------------------------------------------------


def kustomize_command() -> list[str]:
    """kubectl's built-in kustomize (on the project's machine image), or a standalone kustomize."""
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    if kustomize := shutil.which("kustomize"):
        return [kustomize, "build"]
    raise AssertionError("neither kubectl nor kustomize is installed: the manifests cannot be rendered")


@cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    out = subprocess.run(
        [*kustomize_command(), str(K8S / "overlays" / overlay)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, f"kustomize failed for {overlay}:\n{out.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def by_kind(docs: tuple[dict[str, Any], ...], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def container_env(docs: tuple[dict[str, Any], ...], pod_spec: dict[str, Any]) -> dict[str, str | None]:
    """Env name → value (None when it comes from a Secret not in the render) for the first container.

    Prod creates its Secrets out of band with the same keys as dev's generated ones, so an envFrom
    Secret missing from a render is read from the dev overlay's copy.
    """
    container = pod_spec["containers"][0]
    config_maps = by_kind(docs, "ConfigMap")
    secrets = {**by_kind(render("dev"), "Secret"), **by_kind(docs, "Secret")}
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            data = config_maps[source["configMapRef"]["name"]].get("data", {})
            env.update({prefix + k: v for k, v in data.items()})
        if "secretRef" in source:
            data = secrets[source["secretRef"]["name"]].get("data", {})
            env.update({prefix + k: base64.b64decode(v).decode() for k, v in data.items()})
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif ref := item.get("valueFrom", {}).get("secretKeyRef"):
            secret = secrets.get(ref["name"])
            data = secret.get("data", {}) if secret else {}
            env[item["name"]] = base64.b64decode(data[ref["key"]]).decode() if ref["key"] in data else None
        else:
            env[item["name"]] = None
    return env


def expand(env: dict[str, str | None]) -> dict[str, str]:
    """Kubernetes' $(VAR) expansion, for values built from other variables (database URLs)."""
    resolved: dict[str, str] = {}
    for name, value in env.items():
        if value is None:
            continue
        for other, other_value in resolved.items():
            value = value.replace(f"$({other})", other_value)
        resolved[name] = value
    return resolved


# --- dockerfiles ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def dockerfile_instructions(text: str) -> list[Instruction]:
    """Logical instructions: comments dropped, backslash continuations joined."""
    instructions: list[Instruction] = []
    buffer = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        keyword, _, args = buffer.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
        buffer = ""
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def run_flags_removed(args: str) -> str:
    """A RUN's shell command without BuildKit `--mount=...` flags."""
    words = shlex.split(args)
    return shlex.join([w for w in words if not w.startswith("--mount=")])
