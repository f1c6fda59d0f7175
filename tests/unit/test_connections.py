"""Connection options: Temporal (TLS, API key, payload encryption) and Kafka (TLS, SASL).

Temporal's client configuration is read from ``override_env_vars`` here, never from the
environment of the process running the tests.
"""

from __future__ import annotations

import datetime
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr
from temporalio.converter import DefaultFailureConverterWithEncodedAttributes
from temporalio.service import TLSConfig

from devtools.stack import free_stack_settings, settings_env, temporal_dev_server_argv
from payments.config import GatewaySettings, KafkaSettings, Settings, TemporalSettings
from payments.events.connection import KafkaMisconfigured, kafka_client_options
from payments.events.publisher import KafkaEventPublisher
from payments.keyring import KeyRingMisconfigured, new_key_entry
from workflows.client import TemporalConnection
from workflows.codec import KEY_ID, EncryptionCodec
from workflows.connection import (
    TemporalConnectionMisconfigured,
    temporal_connect_options,
)

PASSWORD = "kafka-password-never-shown"
API_KEY = "temporal-api-key-never-shown"


# --- certificates ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, and a client certificate it signed, as PEM files."""
    directory = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("test-ca"))
        .issuer_name(_name("test-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("payment-service"))
        .issuer_name(ca_cert.subject)
        .public_key(client_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(directory / "ca.pem", directory / "client.pem", directory / "client.key")
    pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(client_cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(
        client_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pki


# --- Temporal ----------------------------------------------------------------------------------
def settings(tmp_path: Path, **temporal: Any) -> Settings:
    return Settings(
        temporal=TemporalSettings(
            **{
                "address": "temporal.example:7233",
                "namespace": "payments-test",
                "payload_keys": None,
                "dev_payload_keys_file": tmp_path / "payload-keys.dev",
                **temporal,
            }
        ),
        gateway=GatewaySettings(environment="local"),
    )


def env(tmp_path: Path, **variables: str) -> dict[str, str]:
    """Temporal's variables, with the config file pointed somewhere empty (not ~/.config)."""
    return {"TEMPORAL_CONFIG_FILE": str(tmp_path / "absent.toml"), **variables}


def test_nothing_set_is_plain_tcp_without_credentials(tmp_path: Path) -> None:
    options = temporal_connect_options(settings(tmp_path), override_env_vars=env(tmp_path))
    assert options["target_host"] == "temporal.example:7233"
    assert options["namespace"] == "payments-test"
    assert "tls" not in options
    assert "api_key" not in options
    assert "rpc_metadata" not in options


def test_the_data_converter_encrypts_payloads_and_failures(tmp_path: Path) -> None:
    options = temporal_connect_options(settings(tmp_path), override_env_vars=env(tmp_path))
    converter = options["data_converter"]
    assert isinstance(converter.payload_codec, EncryptionCodec)
    assert isinstance(converter.failure_converter, DefaultFailureConverterWithEncodedAttributes)


def test_api_key_and_mutual_tls_from_temporals_variables(tmp_path: Path, pki: Pki) -> None:
    variables = env(
        tmp_path,
        TEMPORAL_API_KEY=API_KEY,
        TEMPORAL_TLS_SERVER_CA_CERT_PATH=str(pki.ca),
        TEMPORAL_TLS_CLIENT_CERT_PATH=str(pki.cert),
        TEMPORAL_TLS_CLIENT_KEY_PATH=str(pki.key),
        TEMPORAL_TLS_SERVER_NAME="temporal.internal",
        TEMPORAL_GRPC_META_X_TENANT="acme",
    )
    options = temporal_connect_options(settings(tmp_path), override_env_vars=variables)
    assert options.get("api_key") == API_KEY
    tls = options.get("tls")
    assert isinstance(tls, TLSConfig)
    assert tls.server_root_ca_cert == pki.ca.read_bytes()
    assert tls.client_cert == pki.cert.read_bytes()
    assert tls.client_private_key == pki.key.read_bytes()
    assert tls.domain == "temporal.internal"
    assert options.get("rpc_metadata") == {"x-tenant": "acme"}


def test_an_api_key_alone_turns_tls_on(tmp_path: Path) -> None:
    variables = env(tmp_path, TEMPORAL_API_KEY=API_KEY)
    options = temporal_connect_options(settings(tmp_path), override_env_vars=variables)
    assert options.get("api_key") == API_KEY
    assert options.get("tls") is True


def test_our_address_and_namespace_win(tmp_path: Path) -> None:
    variables = env(tmp_path, TEMPORAL_ADDRESS="elsewhere:1", TEMPORAL_NAMESPACE="other")
    options = temporal_connect_options(settings(tmp_path), override_env_vars=variables)
    assert (options["target_host"], options["namespace"]) == (
        "temporal.example:7233",
        "payments-test",
    )


def test_a_profile_file_is_read(tmp_path: Path, pki: Pki) -> None:
    config = tmp_path / "temporal.toml"
    config.write_text(
        '[profile.cloud]\napi_key = "from-the-file"\n'
        f'[profile.cloud.tls]\nserver_ca_cert_path = "{pki.ca}"\n'
    )
    variables = {"TEMPORAL_CONFIG_FILE": str(config), "TEMPORAL_PROFILE": "cloud"}
    options = temporal_connect_options(settings(tmp_path), override_env_vars=variables)
    assert options.get("api_key") == "from-the-file"
    tls = options.get("tls")
    assert isinstance(tls, TLSConfig) and tls.server_root_ca_cert == pki.ca.read_bytes()


def test_a_missing_certificate_file_is_named(tmp_path: Path, pki: Pki) -> None:
    variables = env(
        tmp_path,
        TEMPORAL_TLS_CLIENT_CERT_PATH=str(tmp_path / "nope.pem"),
        TEMPORAL_TLS_CLIENT_KEY_PATH=str(pki.key),
    )
    with pytest.raises(TemporalConnectionMisconfigured, match="TEMPORAL_TLS_CLIENT_CERT_PATH"):
        temporal_connect_options(settings(tmp_path), override_env_vars=variables)


def test_a_client_certificate_needs_its_key(tmp_path: Path, pki: Pki) -> None:
    variables = env(tmp_path, TEMPORAL_TLS_CLIENT_CERT_PATH=str(pki.cert))
    with pytest.raises(TemporalConnectionMisconfigured, match="TEMPORAL_TLS_CLIENT_KEY_PATH"):
        temporal_connect_options(settings(tmp_path), override_env_vars=variables)


def test_an_unknown_profile_is_a_configuration_error(tmp_path: Path) -> None:
    variables = env(tmp_path, TEMPORAL_PROFILE="nowhere")
    with pytest.raises(TemporalConnectionMisconfigured, match="nowhere"):
        temporal_connect_options(settings(tmp_path), override_env_vars=variables)


def test_a_broken_config_file_is_reported_without_its_content(tmp_path: Path) -> None:
    config = tmp_path / "temporal.toml"
    config.write_text(f'[profile.default]\napi_key = "{API_KEY}\n')  # unterminated string
    with pytest.raises(TemporalConnectionMisconfigured) as raised:
        temporal_connect_options(
            settings(tmp_path), override_env_vars={"TEMPORAL_CONFIG_FILE": str(config)}
        )
    assert API_KEY not in str(raised.value)


async def test_development_processes_share_one_generated_ring(tmp_path: Path) -> None:
    api = temporal_connect_options(settings(tmp_path), override_env_vars=env(tmp_path))
    worker = temporal_connect_options(settings(tmp_path), override_env_vars=env(tmp_path))
    assert (tmp_path / "payload-keys.dev").is_file()
    encoded = await api["data_converter"].encode(["from the API"])
    assert await worker["data_converter"].decode(encoded, [str]) == ["from the API"]


async def test_configured_keys_are_used(tmp_path: Path) -> None:
    keys = SecretStr(f"{new_key_entry('2026-02')},{new_key_entry('2025-11')}")
    options = temporal_connect_options(
        settings(tmp_path, payload_keys=keys), override_env_vars=env(tmp_path)
    )
    [payload] = await options["data_converter"].encode(["x"])
    assert payload.metadata[KEY_ID] == b"2026-02"
    assert not (tmp_path / "payload-keys.dev").exists()


def test_outside_development_the_keys_are_required(tmp_path: Path) -> None:
    production = settings(tmp_path).model_copy(
        update={"gateway": GatewaySettings(environment="production", private_key=SecretStr("k"))}
    )
    with pytest.raises(KeyRingMisconfigured, match="TEMPORAL_PAYLOAD_KEYS"):
        temporal_connect_options(production, override_env_vars=env(tmp_path))
    with pytest.raises(KeyRingMisconfigured, match="TEMPORAL_PAYLOAD_KEYS"):
        TemporalConnection.for_settings(production)  # at start-up, not at the first payment


def test_the_connection_exposes_its_codec_for_the_remote_endpoint(tmp_path: Path) -> None:
    connection = TemporalConnection.for_settings(settings(tmp_path))
    assert isinstance(connection.payload_codec, EncryptionCodec)


# --- the dev stack -----------------------------------------------------------------------------
def test_each_stack_has_its_own_ring_shared_by_its_processes(tmp_path: Path) -> None:
    stack = free_stack_settings(tmp_path / "stack")
    assert stack.temporal.dev_payload_keys_file == tmp_path / "stack" / "temporal-payload-keys.dev"
    child_env = settings_env(stack)
    assert child_env["TEMPORAL_DEV_PAYLOAD_KEYS_FILE"] == str(stack.temporal.dev_payload_keys_file)


def test_the_dev_servers_ui_decodes_through_the_api() -> None:
    argv = temporal_dev_server_argv(
        "127.0.0.1", 7233, 8233, None, cli="temporal", codec_endpoint="http://127.0.0.1:8000/codec"
    )
    at = argv.index("--ui-codec-endpoint")
    assert argv[at + 1] == "http://127.0.0.1:8000/codec"
    headless = temporal_dev_server_argv(
        "127.0.0.1", 7233, None, None, cli="temporal", codec_endpoint="http://x/codec"
    )
    assert "--ui-codec-endpoint" not in headless


# --- Kafka -------------------------------------------------------------------------------------
def kafka(**fields: Any) -> KafkaSettings:
    """Every security field explicit, so that KAFKA_* variables of the process do not count."""
    defaults: dict[str, Any] = {
        "security_protocol": "PLAINTEXT",
        "sasl_mechanism": None,
        "sasl_username": None,
        "sasl_password": None,
        "ssl_cafile": None,
        "ssl_certfile": None,
        "ssl_keyfile": None,
    }
    return KafkaSettings(**{**defaults, **fields})


def test_kafka_plaintext() -> None:
    assert kafka_client_options(kafka()) == {"security_protocol": "PLAINTEXT"}


def test_kafka_mutual_tls(pki: Pki) -> None:
    options = kafka_client_options(
        kafka(
            security_protocol="SSL", ssl_cafile=pki.ca, ssl_certfile=pki.cert, ssl_keyfile=pki.key
        )
    )
    assert options["security_protocol"] == "SSL"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    trusted: list[Any] = [cert["subject"] for cert in context.get_ca_certs()]
    assert ((("commonName", "test-ca"),),) in trusted  # our CA, not only the system's
    assert "sasl_mechanism" not in options


def test_kafka_sasl_ssl_with_scram_and_the_system_cas() -> None:
    options = kafka_client_options(
        kafka(
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username="payments",
            sasl_password=SecretStr(PASSWORD),
        )
    )
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "payments"
    assert options["sasl_plain_password"] == PASSWORD


def test_kafka_sasl_plaintext_has_no_tls() -> None:
    options = kafka_client_options(
        kafka(
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="PLAIN",
            sasl_username="payments",
            sasl_password=SecretStr(PASSWORD),
        )
    )
    assert "ssl_context" not in options
    assert options["sasl_mechanism"] == "PLAIN"


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        (
            {"security_protocol": "SASL_SSL", "sasl_username": "u", "sasl_password": PASSWORD},
            "KAFKA_SASL_MECHANISM",
        ),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_password": PASSWORD},
            "KAFKA_SASL_USERNAME",
        ),
        (
            {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "PLAIN",
                "sasl_username": "u",
            },
            "KAFKA_SASL_PASSWORD",
        ),
        (
            {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "PLAIN",
                "sasl_username": "u",
                "sasl_password": "",
            },
            "KAFKA_SASL_PASSWORD",
        ),
        ({"sasl_username": "u", "sasl_password": PASSWORD}, "KAFKA_SASL_USERNAME"),
        ({"ssl_cafile": "CA"}, "KAFKA_SSL_CAFILE"),
        ({"security_protocol": "SSL", "ssl_cafile": "MISSING"}, "KAFKA_SSL_CAFILE"),
        ({"security_protocol": "SSL", "ssl_keyfile": "KEY"}, "KAFKA_SSL_CERTFILE"),
        ({"security_protocol": "SSL", "ssl_certfile": "KEY"}, "KAFKA_SSL_CERTFILE"),
    ],
)
def test_kafka_combinations_that_cannot_work_are_refused(
    fields: dict[str, Any], named: str, pki: Pki, tmp_path: Path
) -> None:
    files = {"CA": pki.ca, "KEY": pki.key, "MISSING": tmp_path / "missing.pem"}
    resolved = {name: files.get(value, value) for name, value in fields.items()}
    if "sasl_password" in resolved:
        resolved["sasl_password"] = SecretStr(resolved["sasl_password"])
    with pytest.raises(KafkaMisconfigured, match=named) as raised:
        kafka_client_options(kafka(**resolved))
    assert PASSWORD not in str(raised.value)


async def test_the_producer_connects_with_the_security_settings() -> None:
    producer = KafkaEventPublisher.build_producer(
        kafka(
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-256",
            sasl_username="payments",
            sasl_password=SecretStr(PASSWORD),
        )
    )
    try:
        client = producer.client
        assert client._security_protocol == "SASL_SSL"
        assert isinstance(client._ssl_context, ssl.SSLContext)
        assert client._sasl_mechanism == "SCRAM-SHA-256"
    finally:
        await producer.stop()
