"""The RabbitMQ broker every service uses: confirms, unroutable = error, telemetry and metrics."""

from __future__ import annotations

import logging

from faststream.rabbit import Channel, RabbitBroker
from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
from faststream.rabbit.prometheus import RabbitPrometheusMiddleware
from opentelemetry.trace import TracerProvider
from prometheus_client import CollectorRegistry

from servicekit.settings import ServiceSettings


def build_broker(
    settings: ServiceSettings,
    *,
    tracer_provider: TracerProvider | None = None,
    registry: CollectorRegistry,
) -> RabbitBroker:
    return RabbitBroker(
        settings.amqp_url,
        default_channel=Channel(
            prefetch_count=settings.consumer_prefetch, publisher_confirms=True, on_return_raises=True
        ),
        app_id=settings.service_name,
        graceful_timeout=15.0,
        log_level=logging.DEBUG,  # per-message access logs only when debugging; our consumer logs what matters
        middlewares=[
            RabbitTelemetryMiddleware(tracer_provider=tracer_provider),
            RabbitPrometheusMiddleware(registry=registry, app_name=settings.service_name),
        ],
        description=f"OneClass {settings.service_name} service",
        # Our one subscriber function takes the raw body and parses it itself (to park what is malformed),
        # so FastDepends' per-message injection and validation would be pure overhead.
        apply_types=False,
    )
