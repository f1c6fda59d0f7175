"""Connection security of every Kafka client of the service (producer, consumers, admin).

``KafkaSettings.security_protocol`` picks it: PLAINTEXT (the embedded broker), SSL (TLS, with
a client certificate for mutual TLS), SASL_PLAINTEXT or SASL_SSL (a user and password, with
PLAIN or SCRAM; SASL_SSL is what managed Kafka services ask for). Settings that the chosen
protocol would ignore are refused rather than ignored: a CA file next to PLAINTEXT means
someone believes the traffic is encrypted.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from aiokafka.helpers import create_ssl_context

from payments.config import KafkaSettings

TLS_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})
SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})


class KafkaMisconfigured(ValueError):
    """The Kafka connection settings do not fit together. The message names the settings,
    never the password."""


def _existing_file(path: Path | None, setting: str) -> str | None:
    if path is None:
        return None
    if not path.is_file():
        raise KafkaMisconfigured(f"{setting} names {path}, which is not a file")
    return str(path)


def kafka_client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient:
    ``security_protocol``, plus an ``ssl_context`` for SSL and SASL_SSL (the CA of
    ``KAFKA_SSL_CAFILE``, else the system's; a client certificate and key for mutual TLS) and
    ``sasl_mechanism``/``sasl_plain_username``/``sasl_plain_password`` for SASL (aiokafka takes
    SCRAM credentials under those names too).

    Raises :class:`KafkaMisconfigured` (a ValueError) naming the setting: SASL without
    mechanism, user or password; SASL or TLS settings the protocol would not use; a key without
    its certificate; a file that does not exist. The result holds the password: never log it.
    """
    protocol = settings.security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}

    tls_files = {
        "KAFKA_SSL_CAFILE": settings.ssl_cafile,
        "KAFKA_SSL_CERTFILE": settings.ssl_certfile,
        "KAFKA_SSL_KEYFILE": settings.ssl_keyfile,
    }
    if protocol in TLS_PROTOCOLS:
        if settings.ssl_keyfile is not None and settings.ssl_certfile is None:
            raise KafkaMisconfigured("KAFKA_SSL_KEYFILE needs KAFKA_SSL_CERTFILE")
        cafile = _existing_file(settings.ssl_cafile, "KAFKA_SSL_CAFILE")
        certfile = _existing_file(settings.ssl_certfile, "KAFKA_SSL_CERTFILE")
        keyfile = _existing_file(settings.ssl_keyfile, "KAFKA_SSL_KEYFILE")
        try:
            options["ssl_context"] = create_ssl_context(
                cafile=cafile, certfile=certfile, keyfile=keyfile
            )
        except (ssl.SSLError, OSError) as exc:  # not PEM, a key that does not match...
            raise KafkaMisconfigured(
                "KAFKA_SSL_CAFILE, KAFKA_SSL_CERTFILE or KAFKA_SSL_KEYFILE cannot be loaded: "
                f"{exc.strerror or type(exc).__name__}"
            ) from None
    else:
        unused = [name for name, value in tls_files.items() if value is not None]
        if unused:
            raise KafkaMisconfigured(
                f"{', '.join(unused)} set, but KAFKA_SECURITY_PROTOCOL={protocol} does not use "
                "TLS (SSL or SASL_SSL does)"
            )

    password = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
    sasl = {
        "KAFKA_SASL_MECHANISM": settings.sasl_mechanism or "",
        "KAFKA_SASL_USERNAME": settings.sasl_username or "",
        "KAFKA_SASL_PASSWORD": password,
    }
    if protocol in SASL_PROTOCOLS:
        # Empty counts as missing: an env file's "KAFKA_SASL_PASSWORD=" is a forgotten value.
        missing = [name for name, value in sasl.items() if not value]
        if missing:
            raise KafkaMisconfigured(
                f"KAFKA_SECURITY_PROTOCOL={protocol} needs {', '.join(missing)}"
            )
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = password
    else:
        unused = [name for name, value in sasl.items() if value]
        if unused:
            raise KafkaMisconfigured(
                f"{', '.join(unused)} set, but KAFKA_SECURITY_PROTOCOL={protocol} does not use "
                "SASL (SASL_PLAINTEXT or SASL_SSL does)"
            )
    return options
