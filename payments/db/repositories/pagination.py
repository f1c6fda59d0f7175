"""Keyset pagination, newest first (or oldest first): stable under inserts, unlike OFFSET. A
cursor is the (created_at, id) of the last row of the page before."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Mapped
from sqlmodel.sql.expression import SelectOfScalar

from payments.errors import InvalidRequest

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(created_at: datetime, key: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{key}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, key = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(created), key
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("cursor is not one this API returned", field="cursor") from None


def newest_first(
    query: SelectOfScalar[T],
    created: Mapped[Any],
    key: Mapped[Any],
    cursor: str | None,
) -> SelectOfScalar[T]:
    """``query`` ordered newest first, starting after ``cursor``."""
    if cursor is not None:
        after_created, after_key = decode_cursor(cursor)
        query = query.where(
            sa.or_(created < after_created, sa.and_(created == after_created, key < after_key))
        )
    return query.order_by(created.desc(), key.desc())


def oldest_first(
    query: SelectOfScalar[T],
    created: Mapped[Any],
    key: Mapped[Any],
    cursor: str | None,
) -> SelectOfScalar[T]:
    """``query`` ordered oldest first, starting after ``cursor`` (a walk over every row, as
    reconciliation makes: rows added meanwhile come after the cursor)."""
    if cursor is not None:
        after_created, after_key = decode_cursor(cursor)
        query = query.where(
            sa.or_(created > after_created, sa.and_(created == after_created, key > after_key))
        )
    return query.order_by(created, key)


def page_of(rows: Sequence[T], limit: int, cursor_of: Callable[[T], str]) -> Page[T]:
    """The first ``limit`` of ``rows`` (fetched with one more, to know whether more follow)."""
    if len(rows) > limit:
        items = list(rows[:limit])
        return Page(items, cursor_of(items[-1]))
    return Page(list(rows), None)
