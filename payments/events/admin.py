"""Kafka topic administration: make sure the service's topics exist before anything uses them.

Called by ``make run`` (devtools/stack.py) right after the embedded broker starts, and by the
end-to-end tests. Brokers auto-create topics on first use with their own default partition count
(Tansu: 4), so the service creates its topics explicitly with ``KafkaSettings.partitions``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    TopicAlreadyExistsError,
    for_code,
)

from payments.config import KafkaSettings
from payments.errors import PaymentServiceError, ServiceUnavailable
from payments.events.connection import kafka_client_options
from payments.events.topics import ALL_TOPICS
from payments.retrying import retrying

log = structlog.get_logger(__name__)

# A broker started a moment ago may not accept connections yet: keep trying this long.
DEFAULT_CONNECT_TIMEOUT_SECONDS = 10.0
_RETRY_INTERVAL_SECONDS = 0.2
_REQUEST_TIMEOUT_MS = 5_000


class TopicCreationFailed(PaymentServiceError):
    """The broker answered but refused to create a topic (e.g. replication factor too high).

    Retrying cannot help: the settings or the cluster need fixing.
    """

    code = "kafka_topic_creation_failed"


async def _connected_admin(kafka: KafkaSettings, within_seconds: float) -> Any:
    """A started admin client, retrying the bootstrap for ``within_seconds``.

    Only connection failures and timeouts are retried: the broker may still be starting.
    Raises ServiceUnavailable, naming the address, when it never answers, and
    KafkaMisconfigured (a ValueError) at once when the security settings do not fit together.
    """
    security = kafka_client_options(kafka)
    bootstrap = kafka.bootstrap_servers

    async def connected() -> Any:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="payment-service-admin",
            request_timeout_ms=_REQUEST_TIMEOUT_MS,
            **security,
        )
        try:
            await admin.start()
        except BaseException:
            await admin.close()
            raise
        return admin

    try:
        return await retrying(
            connected,
            on=(KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError),
            give_up_after=within_seconds,
            wait_initial=_RETRY_INTERVAL_SECONDS,
            wait_max=1.0,
        )
    except (KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError) as exc:
        raise ServiceUnavailable(
            f"Kafka at {bootstrap} did not answer within {within_seconds:g} s: {exc}"
        ) from exc


async def wait_for_kafka(
    kafka: KafkaSettings | str,
    # A deadline for the retry loop, not a cancellation of one attempt: the error names the
    # last failure, which asyncio.timeout() would hide.
    timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,  # noqa: ASYNC109
) -> None:
    """Return once a broker answers a metadata request: the cluster of ``kafka`` (with its
    connection security), or a plaintext broker at a bare ``host:port`` address.

    Retries refused connections; raises ServiceUnavailable if none succeeds within ``timeout``
    seconds.
    """
    # model_construct: the defaults (plaintext), not whatever KAFKA_* the environment holds.
    settings = (
        KafkaSettings.model_construct(bootstrap_servers=kafka) if isinstance(kafka, str) else kafka
    )
    admin = await _connected_admin(settings, timeout)
    await admin.close()


async def ensure_topics(
    kafka: KafkaSettings,
    topics: Iterable[str] = ALL_TOPICS,
    *,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
) -> None:
    """Create every topic of ``topics`` (``kafka.topic_prefix`` applied) that does not exist yet.

    Idempotent: existing topics are left as they are (their partition count is not changed),
    and a topic created concurrently by someone else counts as success. Retries the connection
    for ``connect_timeout`` seconds; any other broker error is raised.
    """
    wanted = list(dict.fromkeys(kafka.topic(name) for name in topics))
    admin = await _connected_admin(kafka, connect_timeout)
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        if not missing:
            log.debug("kafka_topics_present", topics=wanted)
            return
        response = await admin.create_topics(
            [
                NewTopic(
                    name=name,
                    num_partitions=kafka.partitions,
                    replication_factor=kafka.replication_factor,
                )
                for name in missing
            ]
        )
        # CreateTopics reports errors per topic in the response rather than raising.
        # Entries are (topic, error_code) in v0 and (topic, error_code, error_message) later.
        failures: list[str] = []
        for entry in response.topic_errors:
            topic, error_code = entry[0], entry[1]
            if error_code == 0:
                continue
            error_type = for_code(error_code)
            if issubclass(error_type, TopicAlreadyExistsError):
                continue  # created by someone else between list_topics and create_topics
            message = entry[2] if len(entry) > 2 and entry[2] else error_type.__name__
            failures.append(f"{topic}: {message}")
        if failures:
            raise TopicCreationFailed("could not create Kafka topics: " + "; ".join(failures))
        log.info(
            "kafka_topics_created",
            topics=missing,
            partitions=kafka.partitions,
            replication_factor=kafka.replication_factor,
        )
    finally:
        await admin.close()
