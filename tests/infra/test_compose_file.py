"""docker-compose.yml, checked without Docker: what it runs exists in the project, what it
sets is read by the service and documented, its images are pinned, and what publishes a port
or is waited on reports its health."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings
from typer.main import get_command

from cli.main import app
from devtools.sandbox.settings import SandboxSettings
from payments.config import OrderServiceSettings, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
README = (ROOT / "README.md").read_text()
# The service's own containers: built from the Dockerfile.
OURS = sorted(name for name, service in SERVICES.items() if "build" in service)
# Read by libraries the service uses rather than by its settings: libpq's password.
READ_ELSEWHERE = {"PGPASSWORD"}
# The secrets each process cannot start without outside local development.
SECRETS = {
    "api": {
        "TEMPORAL_PAYLOAD_KEYS",
        "PAYMENTS_TOKEN_KEYS",
        "API_SESSION_SECRET",
        "BRAINTREE_PRIVATE_KEY",
    },
    "worker": {"TEMPORAL_PAYLOAD_KEYS", "PAYMENTS_TOKEN_KEYS", "BRAINTREE_PRIVATE_KEY"},
    "consumer": {"TEMPORAL_PAYLOAD_KEYS"},
}


def variables(group: type[BaseSettings]) -> set[str]:
    prefix = str(group.model_config.get("env_prefix", ""))
    return {(info.alias or f"{prefix}{name}").upper() for name, info in group.model_fields.items()}


def read_by_the_service() -> set[str]:
    names: set[str] = set()
    for info in Settings.model_fields.values():
        group = info.annotation
        if isinstance(group, type) and issubclass(group, BaseSettings):
            names |= variables(group)
    return names | variables(OrderServiceSettings)


def environment(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment as a mapping"
    return env


def test_every_command_of_ours_is_a_command_of_the_payments_console() -> None:
    console = get_command(app)
    for name in OURS:
        argv = SERVICES[name].get("command")
        assert argv, f"{name}: no command"
        if name == "sandbox-gateway":  # its image holds devtools, run as a module
            assert argv == ["python", "-m", "devtools.sandbox"]
            assert (ROOT / "devtools" / "sandbox" / "__main__.py").is_file()
            continue
        assert argv[0] == "payments", f"{name}: {argv}"
        command: Any = console
        for word in argv[1:]:
            subcommands = getattr(command, "commands", {})  # a group's, by name
            assert word in subcommands, f"{name}: payments has no command {argv[1:]}"
            command = subcommands[word]


def test_every_variable_set_for_the_service_is_read_and_documented() -> None:
    readable = read_by_the_service()
    for name in OURS:
        readable_here = readable | (
            variables(SandboxSettings) if name == "sandbox-gateway" else set()
        )
        for variable in environment(SERVICES[name]):
            assert variable in readable_here | READ_ELSEWHERE, f"{name} sets {variable}: unread"
            assert re.search(rf"\b{variable}\b", README), f"{variable} is not in the README"


def test_every_secret_a_process_needs_is_passed() -> None:
    for name, secrets in SECRETS.items():
        env = environment(SERVICES[name])
        missing = secrets - set(env)
        assert not missing, f"{name} lacks {missing}"
        for secret in secrets:
            # From the environment or .env, required: never a value written here.
            assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", str(env[secret])), (name, secret)


def test_two_apis_and_two_workers_and_the_ui_decodes_through_the_api() -> None:
    assert SERVICES["api"]["deploy"]["replicas"] == 2
    assert SERVICES["worker"]["deploy"]["replicas"] == 2
    # Two replicas cannot publish one host port: a range, one port each.
    [published] = SERVICES["api"]["ports"]
    assert re.fullmatch(
        r"127\.0\.0\.1:\$\{API_HOST_PORT:-8000\}-\$\{API_HOST_PORT_LAST:-8001\}:8000", published
    )
    ui = environment(SERVICES["temporal-ui"])
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == "http://127.0.0.1:${API_HOST_PORT:-8000}/codec"
    origins = environment(SERVICES["api"])["API_CORS_ORIGINS"]
    assert "${TEMPORAL_UI_HOST_PORT:-8080}" in origins


def test_search_attributes_are_registered_before_the_service_starts() -> None:
    assert SERVICES["temporal-search-attributes"]["command"] == ["payments", "search-attributes"]
    for name in ("api", "worker", "consumer"):
        waits_for = SERVICES[name]["depends_on"]
        assert waits_for["temporal-search-attributes"]["condition"] == (
            "service_completed_successfully"
        ), name


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_images_are_pinned(name: str) -> None:
    service = SERVICES[name]
    image = str(service.get("image", ""))
    if "build" in service:  # built here, from pinned bases (the Dockerfile's PYTHON_IMAGE)
        return
    resolved = re.sub(r"\$\{\w+:-([^}]+)\}", r"\1", image)
    assert re.fullmatch(r"[\w./-]+:[\w.-]+", resolved), f"{name}: {image} has no tag"
    assert not resolved.endswith((":latest", ":stable")), f"{name}: {image} floats"


def test_what_publishes_a_port_or_is_waited_on_has_a_healthcheck() -> None:
    waited_on = {
        dependency
        for service in SERVICES.values()
        for dependency, condition in (service.get("depends_on") or {}).items()
        if condition.get("condition") == "service_healthy"
    }
    for name, service in SERVICES.items():
        if "ports" in service or name in waited_on:
            assert "healthcheck" in service, f"{name} has no healthcheck"
