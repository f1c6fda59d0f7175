"""Preparing a Temporal namespace for the service: its custom search attributes.

A namespace refuses a run whose start or upsert names an unregistered attribute, so they are
registered before the first worker or API of a version that sets them is deployed
(``payments search-attributes``; the dev server registers them itself at start). Adding is
idempotent; an attribute registered with another type is an error an operator must resolve.

Self-hosted clusters take them through the operator service, as here. Temporal Cloud refuses
that call: there they are added with ``tcld namespace search-attributes add`` or in the Cloud
UI, with the names and types of :data:`workflows.search_attributes.SEARCH_ATTRIBUTES`.
"""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from workflows.search_attributes import SEARCH_ATTRIBUTES, type_name


class SearchAttributeConflict(RuntimeError):
    """An attribute of the service is registered in the namespace with another type."""


async def registered_search_attributes(
    client: Client, namespace: str
) -> dict[str, IndexedValueType.ValueType] | None:
    """The namespace's custom attributes and their types; None where the server cannot list
    them (Temporal's time-skipping test server)."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.UNIMPLEMENTED:
            return None
        raise
    return dict(listed.custom_attributes)


async def register_search_attributes(client: Client, namespace: str) -> list[str]:
    """Add the service's attributes the namespace lacks; the names added (none when all
    were there). Raises :class:`SearchAttributeConflict` naming any registered with another
    type."""
    known = await registered_search_attributes(client, namespace) or {}
    conflicts = [
        f"{key.name} is {IndexedValueType.Name(known[key.name])}, not {type_name(key)}"
        for key in SEARCH_ATTRIBUTES
        if key.name in known and known[key.name] != int(key.indexed_value_type)
    ]
    if conflicts:
        raise SearchAttributeConflict("; ".join(conflicts))
    missing = {
        key.name: IndexedValueType.ValueType(int(key.indexed_value_type))
        for key in SEARCH_ATTRIBUTES
        if key.name not in known
    }
    if missing:
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
            )
        except RPCError as exc:
            # Another process added them meanwhile (two workers starting at once).
            if exc.status != RPCStatusCode.ALREADY_EXISTS:
                raise
    return sorted(missing)


async def missing_search_attributes(client: Client, namespace: str) -> list[str] | None:
    """The service's attributes the namespace lacks; None where it cannot tell (a server
    that cannot list them, or credentials not allowed to: Temporal Cloud's API keys)."""
    try:
        known = await registered_search_attributes(client, namespace)
    except RPCError as exc:
        if exc.status == RPCStatusCode.PERMISSION_DENIED:
            return None
        raise
    if known is None:
        return None
    return sorted(key.name for key in SEARCH_ATTRIBUTES if key.name not in known)
