from datetime import UTC, datetime

import pytest
from notifications.adapters.resilience import CircuitBreaker
from notifications.domain.quiet_hours import release_time
from notifications.service_layer import reports
from notifications.service_layer.preferences import is_stop


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_threshold_and_half_opens_after_reset() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=3, reset_s=30, clock=clock)
    for _ in range(2):
        breaker.failure()
    assert breaker.allows()
    breaker.failure()
    assert not breaker.allows()
    clock.now = 30
    assert breaker.state == "half_open"
    breaker.failure()  # the trial call failed: open again for a full period
    assert not breaker.allows()
    clock.now = 60
    breaker.success()
    assert breaker.state == "closed"


@pytest.mark.parametrize(
    ("utc_hour", "released_utc_hour"),
    [(18, None), (19, 5), (23, 5), (3, 5), (5, None), (12, None)],
)
def test_quiet_hours_span_midnight_in_local_time(utc_hour: int, released_utc_hour: int | None) -> None:
    now = datetime(2026, 11, 22, utc_hour, 30, tzinfo=UTC)  # Harare is UTC+2: quiet 21:00-07:00 local
    release = release_time(now, 21, 7, "Africa/Harare")
    if released_utc_hour is None:
        assert release is None
    else:
        assert release is not None
        assert release.hour == released_utc_hour
        assert release > now


def test_stop_words_in_three_languages() -> None:
    assert is_stop("STOP")
    assert is_stop(" stop please")
    assert is_stop("Mira")
    assert is_stop("yima")
    assert not is_stop("Thanks, stop by tomorrow")


def test_report_shapes_per_provider() -> None:
    [telone] = reports.parse("telone", {"message_id": "T1", "status": "DELIVERED"})
    [econet] = reports.parse("econet", {"messageId": "E1", "state": "FAILED", "errorCode": "001"})
    [generic] = reports.parse("generic", {"id": "G1", "status": "DELIVERED"})
    assert (telone.status, econet.status, econet.error, generic.provider) == (
        "delivered",
        "failed",
        "001",
        "generic_sms",
    )
    with pytest.raises(reports.UnreadableReport):
        reports.parse("telone", {"status": "DELIVERED"})


@pytest.mark.parametrize(
    "body", [{"entry": [{"changes": [{"value": []}]}]}, {"entry": [{"changes": [{"value": {"statuses": ["x"]}}]}]}]
)
def test_a_whatsapp_status_of_the_wrong_shape_is_unreadable_not_a_crash(body: dict[str, object]) -> None:
    with pytest.raises(reports.UnreadableReport):
        reports.parse("whatsapp", body)
