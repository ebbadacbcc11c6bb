"""docker-compose.yml and the Dockerfile, checked without a Docker engine: every service runs
a real `ckm` command, and every CKM_* variable is a real setting."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import typer
import yaml

from ckm.cli import app
from config.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
CKM_SERVICES = {name: svc for name, svc in COMPOSE["services"].items() if name != "redis"}


def resolve(args: list[str]):
    """Walk a `ckm ...` argument list down the real command tree; fail on anything unknown."""
    command = typer.main.get_command(app)
    rest = list(args)
    while hasattr(command, "commands") and rest and not rest[0].startswith("-"):
        sub = command.commands.get(rest.pop(0))
        assert sub is not None, f"unknown command in {args}"
        command = sub
    known = {opt for param in command.params for opt in getattr(param, "opts", [])}
    for arg in rest:
        if arg.startswith("--"):
            assert arg.split("=")[0] in known, f"{arg} is not an option of {args}"
    return command


def test_required_services_exist():
    assert {"redis", "watcher", "worker", "flower", "beat"} <= set(COMPOSE["services"])
    assert {"contrail", "kube"} <= {n for n, s in COMPOSE["services"].items()
                                    if "demo" in s.get("profiles", [])}


@pytest.mark.parametrize("name", sorted(CKM_SERVICES))
def test_every_service_runs_a_real_ckm_command(name):
    command = CKM_SERVICES[name]["command"]
    assert command[0] == "ckm"
    resolve(command[1:])


def test_workers_can_scale():
    worker = COMPOSE["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker


@pytest.mark.parametrize("name", sorted(CKM_SERVICES))
def test_every_ckm_variable_is_a_setting(name):
    for variable in CKM_SERVICES[name].get("environment", {}):
        assert variable.startswith("CKM_"), variable
        assert variable[4:].lower() in Settings.model_fields, f"{variable} is no setting"


def test_dockerfile_copies_every_package():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in patterns}
    copied = set(re.findall(r"^COPY (\w+) \1$", (ROOT / "Dockerfile").read_text(), re.M))
    assert copied == packages
