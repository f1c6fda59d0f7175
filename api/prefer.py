"""``Prefer: wait=N`` (RFC 7240): a client that would rather wait a few seconds for the final
answer than poll for it.

POST /initiate-payment and POST /refund answer 202 ``pending`` at once by default. With
``Prefer: wait=N`` they answer 200 with the final payment or refund when it is reached
within N seconds (and say ``Preference-Applied: wait=N``), else the usual 202. N is capped at
MAX_WAIT_SECONDS; a preference that cannot be read is ignored, as RFC 7240 asks, never a
4xx: the answer is then the default one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Response

MAX_WAIT_SECONDS = 10


def wait_preference(values: list[str] | None) -> int | None:
    """The seconds asked for by the ``wait`` preference in ``values`` (each a Prefer header
    field), capped; None when there is none, or it is 0 or not a number."""
    for value in values or []:
        for preference in value.split(","):
            name, _, rest = preference.partition("=")
            if name.strip().lower() != "wait":
                continue
            seconds = rest.split(";", 1)[0].strip().strip('"')
            if not seconds.isdigit() or int(seconds) == 0:
                return None
            return min(int(seconds), MAX_WAIT_SECONDS)
    return None


def _prefer_wait(
    prefer: Annotated[
        list[str] | None,
        Header(
            alias="Prefer",
            description=(
                "`wait=N`: wait up to N seconds (at most 10) for the final outcome; answered "
                "with 200 and `Preference-Applied: wait=N` when it is reached in time, else "
                "with the usual 202 `pending`."
            ),
        ),
    ] = None,
) -> int | None:
    return wait_preference(prefer)


PreferWait = Annotated[int | None, Depends(_prefer_wait)]


def apply_wait(response: Response, wait: int | None, *, final: bool) -> None:
    """Answer 200 (and say so) when the client asked to wait and the outcome is final."""
    if wait is not None and final:
        response.status_code = 200
        response.headers["Preference-Applied"] = f"wait={wait}"
