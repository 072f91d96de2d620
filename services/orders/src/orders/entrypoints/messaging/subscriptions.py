"""What the orders service listens to (the read models grow here)."""

from typing import Any

from servicekit.consumer import Subscription

SUBSCRIPTIONS: list[Subscription[Any]] = []
