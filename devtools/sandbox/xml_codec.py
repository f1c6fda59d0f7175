"""The XML dialect of Braintree's API, as the braintree SDK writes and reads it.

Requests arrive with underscore tags and typed scalars (``<submit_for_settlement
type="boolean">true</submit_for_settlement>``); responses use dashed tags, ``type="array"``
lists, ``type="boolean"``/``"integer"``/``"datetime"`` scalars and ``nil="true"`` for absent
values. The SDK turns dashes back into underscores and raises AttributeError on any field it
expects but does not find, so rendering is explicit about every field (see ``app.py``).

Named ``xml_codec`` rather than ``xml`` so that it can never shadow the standard library's
``xml`` package when a script in this directory is run directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeAlias
from xml.etree import ElementTree
from xml.sax.saxutils import escape

# What a request body parses into: nested dicts keyed by underscore names, lists for
# type="array" elements, and typed scalars.
Parsed: TypeAlias = "str | bool | int | list[Parsed] | dict[str, Parsed] | None"

# What a response is rendered from. Arrays carry the tag of their items, which the SDK reads
# (``<status-history type="array"><status-event>...``), hence XmlArray rather than a list.
XmlValue: TypeAlias = (
    "str | bool | int | Decimal | datetime | XmlArray | Repeated | Mapping[str, XmlValue] | None"
)


@dataclass(frozen=True, slots=True)
class XmlArray:
    """``<key type="array"><item_tag>...</item_tag>...</key>``."""

    item_tag: str
    items: Sequence[XmlValue]


@dataclass(frozen=True, slots=True)
class Repeated:
    """Sibling elements sharing the key's tag, with no wrapper: search results list their
    ``<transaction>`` elements this way, and the SDK reads one as a dict, several as a list."""

    items: Sequence[XmlValue]


class MalformedXml(ValueError):
    """The request body is not the XML the SDK sends."""


def parse_document(body: bytes) -> tuple[str, dict[str, Parsed]]:
    """Parse a request body into (root tag, fields). An empty body is an empty document.

    Raises MalformedXml for anything that is not well-formed XML with element children.
    """
    if not body.strip():
        return "", {}
    try:
        # Safe without defusedxml: ElementTree never fetches external entities, and the expat
        # bundled with Python >= 3.11 refuses entity-expansion bombs. The sandbox is a
        # development tool that only authenticated local clients reach.
        root = ElementTree.fromstring(body)  # noqa: S314
    except ElementTree.ParseError as exc:
        raise MalformedXml(f"request body is not well-formed XML: {exc}") from None
    value = _parse_element(root)
    if not isinstance(value, dict):
        # <transaction/> or <transaction></transaction>: a document with no fields.
        return _underscored(root.tag), {}
    return _underscored(root.tag), value


def _parse_element(element: ElementTree.Element) -> Parsed:
    kind = element.get("type")
    if kind == "array":
        return [_parse_element(child) for child in element]
    if element.get("nil") == "true":
        return None
    if len(element):
        return {_underscored(child.tag): _parse_element(child) for child in element}
    text = element.text or ""
    if kind == "boolean":
        return text.strip() in ("true", "1")
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise MalformedXml(f"<{element.tag}> is not an integer") from None
    return text


def _underscored(tag: str) -> str:
    return tag.replace("-", "_")


def render_document(root: str, content: Mapping[str, XmlValue]) -> str:
    """Render a response document; underscores in keys become the dashes Braintree sends."""
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + _render_node(root, content)


def _render_node(key: str, value: XmlValue) -> str:
    tag = key.replace("_", "-")
    # bool before int: bool is a subclass of int.
    if value is None:
        return f'<{tag} nil="true"/>'
    if isinstance(value, bool):
        return f'<{tag} type="boolean">{"true" if value else "false"}</{tag}>'
    if isinstance(value, int):
        return f'<{tag} type="integer">{value}</{tag}>'
    if isinstance(value, datetime):
        stamp = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f'<{tag} type="datetime">{stamp}</{tag}>'
    if isinstance(value, Decimal):
        return f"<{tag}>{value}</{tag}>"
    if isinstance(value, str):
        return f"<{tag}>{escape(value)}</{tag}>"
    if isinstance(value, XmlArray):
        items = "".join(_render_node(value.item_tag, item) for item in value.items)
        return f'<{tag} type="array">{items}</{tag}>'
    if isinstance(value, Repeated):
        return "".join(_render_node(key, item) for item in value.items)
    children = "".join(_render_node(name, child) for name, child in value.items())
    return f"<{tag}>{children}</{tag}>"
