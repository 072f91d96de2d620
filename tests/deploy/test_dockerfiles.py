"""Each service's Dockerfile, checked without a container engine: its shape, and its build stage's uv
steps replayed for real in a scratch directory (same COPYs, same `uv sync` commands)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.manifests import (
    ROOT,
    SERVICES,
    Instruction,
    Service,
    compose,
    dockerfile_instructions,
    run_flags_removed,
    stages,
)

IDS = [s.name for s in SERVICES]
WORKSPACE_MEMBERS = ("contracts", "libs/servicekit", *(f"services/{s.name}" for s in SERVICES), "deploy/sandbox")


def _instructions(service: Service) -> list[Instruction]:
    return dockerfile_instructions((ROOT / "services" / service.name / "Dockerfile").read_text())


@pytest.mark.parametrize("service", SERVICES, ids=IDS)
def test_dockerfile_is_multi_stage_non_root_with_health_check(service: Service) -> None:
    build, runtime = stages(_instructions(service))
    syncs = [i.args for i in build if i.keyword == "RUN" and "uv sync" in i.args]
    assert syncs, "the build stage installs with uv"
    for command in syncs:
        assert "--frozen" in command
        assert "--no-dev" in command
        assert f"--package {service.name}" in command
    final = {i.keyword: i.args for i in runtime}
    assert final["USER"].split(":")[0] not in {"0", "root"}
    assert f":{service.port}/healthz" in final["HEALTHCHECK"]
    assert json.loads(final["ENTRYPOINT"]) == ["python", "-m", service.package]
    assert final["STOPSIGNAL"] == "SIGTERM"
    copies = [i.args for i in runtime if i.keyword == "COPY"]
    assert all(c.startswith("--from=build") for c in copies), "the runtime stage takes only built artefacts"
    assert not any(i.keyword == "RUN" and "uv" in i.args for i in runtime), "no uv in the final image"


@pytest.mark.parametrize("service", SERVICES, ids=IDS)
def test_dockerfile_copies_every_workspace_manifest(service: Service) -> None:
    """`uv sync --frozen` needs every member's pyproject.toml: a new member must be added to each Dockerfile."""
    copied = {i.args.split()[0] for i in _instructions(service) if i.keyword == "COPY"}
    for member in WORKSPACE_MEMBERS:
        assert f"{member}/pyproject.toml" in copied, f"{service.name}/Dockerfile does not copy {member}/pyproject.toml"


def _copy(source: str, destination: str, context: Path) -> None:
    """Docker's COPY: a directory's contents go into the destination; a file into it when it ends in '/'."""
    origin = ROOT / source
    if origin.is_dir():
        shutil.copytree(origin, context / destination, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        return
    target = context / destination / origin.name if destination.endswith("/") else context / destination
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(origin, target)


def _replay_build_stage(instructions: list[Instruction], context: Path, venv: Path) -> None:
    """Runs the stage's COPYs from the repository and its `uv sync` commands into `venv` instead of /app/.venv."""
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_LINK_MODE": "symlink", "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    for instruction in instructions:
        if instruction.keyword == "COPY" and not instruction.args.startswith("--"):
            *sources, destination = shlex.split(instruction.args)
            for source in sources:
                _copy(source, destination, context)
        elif instruction.keyword == "RUN" and "uv sync" in instruction.args:
            command = run_flags_removed(instruction.args).replace("/app/.venv", str(venv))
            out = subprocess.run(command, shell=True, cwd=context, env=env, capture_output=True, text=True, check=False)
            assert out.returncode == 0, f"{command}\n{out.stderr[-3000:]}"


@pytest.mark.parametrize("service", SERVICES, ids=IDS)
def test_build_stage_installs_the_service_without_dev_tools(service: Service, tmp_path: Path) -> None:
    build, runtime = stages(_instructions(service))
    context, venv = tmp_path / "src", tmp_path / "venv"
    context.mkdir()
    _replay_build_stage(build, context, venv)
    python = venv / "bin" / "python"
    modules = (f"{service.package}.__main__", "alembic", "pytest", "ruff")
    probe = f"import importlib.util as u, json; print(json.dumps([u.find_spec(m) is not None for m in {modules!r}]))"
    found = json.loads(subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True).stdout)
    assert found == [True, True, False, False], f"installed: {dict(zip(modules, found, strict=True))}"
    for instruction in runtime:
        if instruction.keyword == "COPY":
            source = shlex.split(instruction.args)[-2]
            if source.startswith("/src/"):
                assert (context / source.removeprefix("/src/")).exists(), f"runtime copies missing {source}"


def test_the_sandbox_image_builds_from_the_same_workspace(tmp_path: Path) -> None:
    inline = compose()["services"]["sandbox"]["build"]["dockerfile_inline"]
    (build,) = stages(dockerfile_instructions(inline))
    context, venv = tmp_path / "src", tmp_path / "venv"
    context.mkdir()
    _replay_build_stage(build, context, venv)
    assert (venv / "bin" / "oneclass-sandbox").exists()
