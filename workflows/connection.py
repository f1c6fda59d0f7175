"""How every process of the service connects to Temporal: one set of options, so that the API,
the consumer and the worker encrypt and decrypt payloads with the same key ring.

Connection security comes from Temporal's own client configuration (``temporalio.envconfig``):
``TEMPORAL_API_KEY``, ``TEMPORAL_TLS`` (true/false), ``TEMPORAL_TLS_SERVER_CA_CERT_PATH``,
``TEMPORAL_TLS_CLIENT_CERT_PATH``, ``TEMPORAL_TLS_CLIENT_KEY_PATH`` (or their ``*_DATA``
forms), ``TEMPORAL_TLS_SERVER_NAME``, ``TEMPORAL_GRPC_META_<NAME>``, and a TOML file
(``TEMPORAL_CONFIG_FILE``, default ``~/.config/temporalio/temporal.toml``) with profiles
chosen by ``TEMPORAL_PROFILE``, as the ``temporal`` CLI reads them. An API key alone turns TLS
on; nothing set means plain TCP without credentials (the embedded dev server).

The target and namespace are always ``TemporalSettings.address`` and ``.namespace``
(``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``: the same variables), so that readiness checks,
log lines and the connection agree on where Temporal is; an address or namespace in a profile
file is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NotRequired, TypedDict

from temporalio.client import Client, Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfigProfile, ClientConfigTLS, DataSource
from temporalio.service import TLSConfig

from payments.config import Settings
from payments.keyring import KeyRing, load_key_ring
from workflows.codec import data_converter

PAYLOAD_KEYS_SETTING = "TEMPORAL_PAYLOAD_KEYS"


class TemporalConnectionMisconfigured(ValueError):
    """The Temporal client configuration cannot be used (a missing certificate file, an
    unknown profile, an unreadable config file). The message names the setting, never a
    secret."""


class TemporalConnectOptions(TypedDict):
    """Keyword arguments of :meth:`temporalio.client.Client.connect`.

    Holds the API key and TLS private key: never log it.
    """

    target_host: str
    namespace: str
    data_converter: DataConverter
    interceptors: Sequence[Interceptor]
    api_key: NotRequired[str]
    tls: NotRequired[bool | TLSConfig]
    rpc_metadata: NotRequired[Mapping[str, str]]


def payload_key_ring(settings: Settings) -> KeyRing:
    """The ring of ``TEMPORAL_PAYLOAD_KEYS``; in local development (the gateway is the local
    sandbox) the one in ``TemporalSettings.dev_payload_keys_file``, generated on first use.
    Raises KeyRingMisconfigured (a ValueError) otherwise."""
    return load_key_ring(
        settings.temporal.payload_keys,
        dev_file=settings.temporal.dev_payload_keys_file,
        allow_development=settings.gateway.environment == "local",
        setting=PAYLOAD_KEYS_SETTING,
    )


def _load_profile(override_env_vars: Mapping[str, str] | None) -> ClientConfigProfile:
    try:
        return ClientConfigProfile.load(override_env_vars=override_env_vars)
    except RuntimeError as exc:  # the SDK bridge's ConfigError
        # Only the first line: a TOML parse error goes on to quote the offending line of the
        # file, which may be the one holding the API key.
        summary = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TemporalConnectionMisconfigured(
            f"Temporal client configuration (TEMPORAL_CONFIG_FILE / TEMPORAL_PROFILE): {summary}"
        ) from None


def _check_tls_sources(tls: ClientConfigTLS) -> None:
    sources: list[tuple[str, DataSource | None]] = [
        ("TEMPORAL_TLS_SERVER_CA_CERT_PATH", tls.server_root_ca_cert),
        ("TEMPORAL_TLS_CLIENT_CERT_PATH", tls.client_cert),
        ("TEMPORAL_TLS_CLIENT_KEY_PATH", tls.client_private_key),
    ]
    for setting, source in sources:
        if isinstance(source, Path) and not source.is_file():
            raise TemporalConnectionMisconfigured(
                f"{setting} (or the profile's tls section) names {source}, which is not a file"
            )
    if (tls.client_cert is None) != (tls.client_private_key is None):
        # Otherwise the SDK fails later, at connection time, with a less helpful message.
        raise TemporalConnectionMisconfigured(
            "mutual TLS needs both TEMPORAL_TLS_CLIENT_CERT_PATH and "
            "TEMPORAL_TLS_CLIENT_KEY_PATH (or their *_DATA forms)"
        )


def temporal_connect_options(
    settings: Settings, *, override_env_vars: Mapping[str, str] | None = None
) -> TemporalConnectOptions:
    """The options every client and worker of this service connects with.

    Reads Temporal's client configuration from the process environment, or from
    ``override_env_vars`` instead when given (tests), and loads the payload key ring
    (``TEMPORAL_PAYLOAD_KEYS``; in local development a ring generated into
    ``TemporalSettings.dev_payload_keys_file``). Reads certificate files now, so a
    misconfiguration stops the process at start-up: raises
    :class:`TemporalConnectionMisconfigured` or :class:`~payments.keyring.KeyRingMisconfigured`
    (both ValueErrors), never retried.
    """
    profile = _load_profile(override_env_vars)
    if profile.tls is not None:
        _check_tls_sources(profile.tls)
    try:
        # Reads the certificate files: a TLS setting is explicit, an API key alone turns TLS
        # on with the system's roots, TEMPORAL_TLS=false turns it off.
        config = profile.to_client_connect_config()
    except OSError as exc:
        raise TemporalConnectionMisconfigured(
            f"a TEMPORAL_TLS_* file cannot be read: {exc.strerror} ({exc.filename})"
        ) from None
    options = TemporalConnectOptions(
        target_host=settings.temporal.address,
        namespace=settings.temporal.namespace,
        data_converter=data_converter(payload_key_ring(settings)),
        # Spans for starting, signalling and running workflows and activities, their context
        # carried in Temporal's headers: a payment's trace continues in the worker. A client
        # interceptor that is also a worker interceptor applies to the client's workers too.
        interceptors=[TracingInterceptor()],
    )
    if "api_key" in config:
        options["api_key"] = config["api_key"]
    if "tls" in config:
        options["tls"] = config["tls"]
    if "rpc_metadata" in config:
        options["rpc_metadata"] = config["rpc_metadata"]
    return options


async def connect_temporal(
    settings: Settings, *, override_env_vars: Mapping[str, str] | None = None
) -> Client:
    """A client connected with :func:`temporal_connect_options`. Raises RuntimeError when
    Temporal does not answer (the caller decides whether to retry) and the ValueErrors of
    :func:`temporal_connect_options` on misconfiguration."""
    return await Client.connect(
        **temporal_connect_options(settings, override_env_vars=override_env_vars)
    )
