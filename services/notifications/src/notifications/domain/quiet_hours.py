"""Quiet hours: a non-urgent message due inside the recipient's quiet window waits for its end."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


def release_time(now: datetime, start_hour: int, end_hour: int, timezone: str) -> datetime | None:
    """When a message due `now` may go out, or None when `now` is outside the quiet window.

    The window may span midnight (21 → 7). Equal hours mean no quiet window.
    """
    if start_hour == end_hour:
        return None
    local = now.astimezone(ZoneInfo(timezone))
    hour = local.hour
    inside = start_hour <= hour < end_hour if start_hour < end_hour else hour >= start_hour or hour < end_hour
    if not inside:
        return None
    end = datetime.combine(local.date(), time(end_hour), tzinfo=local.tzinfo)
    if end <= local:
        end += timedelta(days=1)
    return end.astimezone(now.tzinfo)
