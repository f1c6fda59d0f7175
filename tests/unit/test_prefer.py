"""Reading ``Prefer: wait=N`` (RFC 7240): capped, and ignored when it cannot be read."""

from __future__ import annotations

import pytest

from api.prefer import MAX_WAIT_SECONDS, wait_preference


@pytest.mark.parametrize(
    ("values", "seconds"),
    [
        (["wait=5"], 5),
        (["respond-async, wait=3"], 3),
        (["handling=lenient", "Wait=2"], 2),
        (['wait="4"'], 4),
        (["wait=4; x=y"], 4),
        (["wait=60"], MAX_WAIT_SECONDS),
        (["wait=0"], None),
        (["wait=-1"], None),
        (["wait=1.5"], None),
        (["wait="], None),
        (["wait"], None),
        (["respond-async"], None),
        ([""], None),
        (None, None),
    ],
)
def test_wait_preference(values: list[str] | None, seconds: int | None) -> None:
    assert wait_preference(values) == seconds
