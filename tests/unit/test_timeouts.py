"""The timeouts that depend on each other stay in order: the SDK reports a slow gateway
before Temporal abandons the attempt, and a dead worker's charge is taken over soon."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from payments.config import GATEWAY_TIMEOUT_MAX_SECONDS, GatewaySettings
from workflows.options import GATEWAY, GATEWAY_START_TO_CLOSE

# What the gateway activities' start-to-close leaves at least for their other calls.
MARGIN = timedelta(seconds=5)


def test_the_sdk_timeout_fits_inside_the_gateway_start_to_close() -> None:
    assert GATEWAY["start_to_close_timeout"] == GATEWAY_START_TO_CLOSE
    longest_sdk_timeout = timedelta(seconds=GATEWAY_TIMEOUT_MAX_SECONDS)
    assert longest_sdk_timeout + MARGIN <= GATEWAY_START_TO_CLOSE
    default = timedelta(seconds=GatewaySettings().timeout_seconds)
    assert default + MARGIN <= GATEWAY_START_TO_CLOSE


def test_a_dead_workers_charge_is_retried_within_30_seconds() -> None:
    first_retry = GATEWAY["retry_policy"].initial_interval
    assert GATEWAY_START_TO_CLOSE + first_retry < timedelta(seconds=25)


def test_a_longer_sdk_timeout_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="timeout_seconds"):
        GatewaySettings(timeout_seconds=GATEWAY_TIMEOUT_MAX_SECONDS + 1)
