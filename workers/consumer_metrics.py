"""The consumer's Prometheus metrics, served on ``KAFKA_CONSUMER_METRICS_ADDRESS``:

- ``payments_consumer_lag{topic, partition}``: messages of the partitions this consumer holds
  that it has not handled yet (the broker's high watermark, as of the last fetch, minus the
  consumer's position), refreshed after every poll; a partition handed to another consumer
  of the group leaves this one's metrics;
- ``payments_consumer_messages_total{topic}``: messages handled (committed);
- ``payments_consumer_dead_letters_total``: messages moved to the dead-letter topic.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from wsgiref.simple_server import WSGIServer

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from payments.config import KafkaSettings


class ConsumerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.lag = Gauge(
            "payments_consumer_lag",
            "Messages not handled yet, by topic and partition held by this consumer",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.handled = Counter(
            "payments_consumer_messages",
            "Messages handled and committed, by topic",
            ["topic"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "payments_consumer_dead_letters",
            "Messages moved to the dead-letter topic",
            registry=self.registry,
        )
        self._server: tuple[WSGIServer, threading.Thread] | None = None

    def serve(self, settings: KafkaSettings) -> None:
        """Serve on the configured address, if any (a thread of prometheus-client's)."""
        if settings.consumer_metrics_address is None:
            return
        host, _, port = settings.consumer_metrics_address.rpartition(":")
        self._server = start_http_server(int(port), addr=host, registry=self.registry)

    def close(self) -> None:
        if self._server is not None:
            server, thread = self._server
            server.shutdown()
            thread.join(timeout=5)

    async def observe_lag(self, consumer: AIOKafkaConsumer) -> None:
        for partition in consumer.assignment():
            # The group may rebalance during the await below: a partition given away meanwhile
            # is skipped (aiokafka's highwater() and position() refuse one not assigned).
            if partition not in consumer.assignment():
                continue
            highwater = consumer.highwater(partition)
            if highwater is None:  # nothing fetched from it yet
                continue
            try:
                position = await consumer.position(partition)
            except IllegalStateError:  # given away while its position was awaited
                continue
            self.lag.labels(partition.topic, str(partition.partition)).set(
                max(0, highwater - position)
            )

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        for partition in partitions:
            with contextlib.suppress(KeyError):  # never observed
                self.lag.remove(partition.topic, str(partition.partition))
