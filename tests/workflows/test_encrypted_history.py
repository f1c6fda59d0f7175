"""What the Temporal server stores is ciphertext: a workflow run end to end on the real dev
server with the encrypting data converter, its history then read by a client without it.

Every payload of every event (workflow input, memo, signal, activity inputs and results, the
activity failure, the workflow result) must be ``binary/encrypted``, the distinctive input must
appear nowhere in the stored history, and the remote codec (the UI's way in) must give it back.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.message import Message
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.converter import DataConverter
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from devtools.stack import find_temporal_cli
    from payments.keyring import KeyRing, new_key_entry
    from workflows.codec import ENCRYPTED_ENCODING, EncryptionCodec, apply_codec, data_converter

SECRET = "order-9c1e-card-4000111111111115"


@dataclass(frozen=True)
class EchoRequest:
    text: str


@dataclass(frozen=True)
class EchoResult:
    shouted: str
    refusal: str
    heard: str


@activity.defn
async def shout(request: EchoRequest) -> EchoRequest:
    return EchoRequest(f"{request.text}!")


@activity.defn
async def refuse(request: EchoRequest) -> None:
    raise ApplicationError(f"refused {request.text}", type="Refused", non_retryable=True)


@workflow.defn
class EchoWorkflow:
    """Carries SECRET through every kind of payload a history holds."""

    def __init__(self) -> None:
        self._heard: list[str] = []

    @workflow.run
    async def run(self, request: EchoRequest) -> EchoResult:
        shouted = await workflow.execute_activity(
            shout, request, start_to_close_timeout=timedelta(seconds=10)
        )
        refusal = ""
        try:
            await workflow.execute_activity(
                refuse,
                request,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except ActivityError as error:
            # The message crossed the server in the failure's encrypted attributes.
            cause = error.cause
            refusal = cause.message if isinstance(cause, ApplicationError) else ""
        await workflow.wait_condition(lambda: bool(self._heard))
        return EchoResult(shouted=shouted.text, refusal=refusal, heard=self._heard[0])

    @workflow.signal
    def hear(self, note: EchoRequest) -> None:
        self._heard.append(note.text)

    @workflow.query
    def heard(self) -> list[str]:
        return list(self._heard)


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    return KeyRing.parse(new_key_entry("test-1"))


@pytest.fixture(scope="module")
async def dev_server(ring: KeyRing) -> AsyncIterator[WorkflowEnvironment]:
    """The real dev server (the time-skipping test server is not the server that stores
    histories in production); its client encrypts."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_temporal_cli(), data_converter=data_converter(ring)
    )
    yield env
    await env.shutdown()


def payloads_in(message: Message) -> Iterator[Payload]:
    """Every Payload anywhere inside ``message`` (repeated fields and maps included)."""
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            values = list(value.values())
        elif field.is_repeated:
            values = list(value)
        else:
            values = [value]
        for item in values:
            if isinstance(item, Payload):
                yield item
            elif isinstance(item, Message):
                yield from payloads_in(item)


async def test_the_server_stores_only_ciphertext(
    dev_server: WorkflowEnvironment, ring: KeyRing
) -> None:
    encrypting = dev_server.client
    task_queue = f"encrypted-{uuid.uuid4()}"
    workflow_id = f"echo-{uuid.uuid4()}"
    async with Worker(
        encrypting, task_queue=task_queue, workflows=[EchoWorkflow], activities=[shout, refuse]
    ):
        handle = await encrypting.start_workflow(
            EchoWorkflow.run,
            EchoRequest(SECRET),
            id=workflow_id,
            task_queue=task_queue,
            memo={"note": SECRET},
        )
        await handle.signal(EchoWorkflow.hear, EchoRequest(SECRET))
        result = await handle.result()
        # The worker encrypts query answers, the client decrypts them.
        assert await handle.query(EchoWorkflow.heard) == [SECRET]
    assert result == EchoResult(f"{SECRET}!", f"refused {SECRET}", SECRET)

    plain = await Client.connect(
        encrypting.service_client.config.target_host, namespace=encrypting.namespace
    )
    fetched = await plain.get_workflow_handle(workflow_id).fetch_history()
    history = History(events=fetched.events)

    assert SECRET.encode() not in history.SerializeToString()
    carrying: set[int] = set()
    for event in history.events:
        for payload in payloads_in(event):
            assert payload.metadata["encoding"] == ENCRYPTED_ENCODING, event
            carrying.add(event.event_type)
    assert carrying >= {
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,  # input and memo
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    }
    [failed] = [
        e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]
    assert failed.activity_task_failed_event_attributes.failure.message == "Encoded failure"

    # Without the codec the result cannot even be read.
    with pytest.raises(KeyError, match="binary/encrypted"):
        await plain.get_workflow_handle(workflow_id).result()

    # The remote codec (what the Web UI calls) gives the result back.
    [completed] = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    ]
    stored = MessageToDict(completed.workflow_execution_completed_event_attributes.result)
    decoded = ParseDict(await apply_codec(EncryptionCodec(ring), "decode", stored), Payloads())
    assert DataConverter.default.payload_converter.from_payloads(
        decoded.payloads, [EchoResult]
    ) == [result]
