"""The one composition root of the notifications service: consumers, dispatcher, providers, HTTP app."""

from dataclasses import dataclass
from urllib.parse import quote

import httpx
from fastapi import FastAPI
from redis.asyncio import Redis
from servicekit.consumer import Subscription
from servicekit.runtime import ServiceRuntime

from notifications.adapters.crypto import PiiVault
from notifications.adapters.providers.email import SmtpMailer
from notifications.adapters.providers.sms import EconetGateway, GenericHttpGateway, SmsGateway, TeloneGateway
from notifications.adapters.providers.whatsapp import WhatsAppCloud
from notifications.adapters.resilience import CircuitBreaker, RateLimiter
from notifications.adapters.templating import Templates
from notifications.domain.commands import SendBulkChunk
from notifications.domain.phone import to_e164
from notifications.entrypoints.http.routes import bulk, delivery_reports, messages, recipients, webhooks
from notifications.entrypoints.messaging.subscriptions import CONSUMER, build_subscriptions
from notifications.service_layer.bulk import BulkChunkHandler
from notifications.service_layer.dispatcher import Dispatcher
from notifications.service_layer.planning import Planner
from notifications.service_layer.sending import Sender
from notifications.service_layer.webhooks import WebhookDeliverer, fan_out
from notifications.settings import Settings

_REPORT_PATHS = {"telone": "telone", "econet": "econet", "generic_sms": "generic"}


@dataclass
class Components:
    settings: Settings
    vault: PiiVault
    templates: Templates
    planner: Planner
    http: httpx.AsyncClient
    redis: Redis
    sender: Sender
    dispatcher: Dispatcher
    webhooks: WebhookDeliverer

    @staticmethod
    def normalise(address: str) -> str:
        """The form an address is hashed in: lower-case e-mail, or E.164 phone number."""
        return address.strip().lower() if "@" in address else to_e164(address)


def _sms_gateways(settings: Settings, http: httpx.AsyncClient) -> list[SmsGateway]:
    known: dict[str, SmsGateway] = {
        "telone": TeloneGateway(http, settings.telone_base_url, settings.telone_api_key, settings.sms_sender_id),
        "econet": EconetGateway(http, settings.econet_base_url, settings.econet_api_key, settings.sms_sender_id),
        "generic_sms": GenericHttpGateway(
            http, settings.generic_sms_base_url, settings.generic_sms_api_key, settings.sms_sender_id
        ),
    }
    return [known[name] for name in settings.sms_providers]


def build(settings: Settings | None = None) -> tuple[ServiceRuntime, Components]:
    settings = settings or Settings()
    vault = PiiVault(settings.pii_keys, settings.pii_hash_key)
    templates = Templates()
    planner = Planner(settings, vault, templates)
    subscriptions = [
        *build_subscriptions(planner.handle_event, fan_out),
        Subscription(CONSUMER, SendBulkChunk, BulkChunkHandler(planner, vault)),
    ]
    runtime = ServiceRuntime(settings, subscriptions=subscriptions)
    http = httpx.AsyncClient(timeout=settings.provider_timeout_s)
    redis = Redis.from_url(settings.redis_url)

    def callback_url(provider: str) -> str | None:
        if not settings.public_base_url:
            return None
        url = f"{settings.public_base_url.rstrip('/')}/api/v1/notifications/delivery-reports/{_REPORT_PATHS[provider]}"
        token = settings.callback_token
        return f"{url}?token={quote(token.get_secret_value())}" if token else url

    sender = Sender(
        sms=_sms_gateways(settings, http),
        whatsapp=WhatsAppCloud(
            http, settings.whatsapp_base_url, settings.whatsapp_phone_number_id, settings.whatsapp_access_token
        ),
        mailer=SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            settings.email_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            use_tls=settings.smtp_use_tls,
            timeout=settings.provider_timeout_s,
        ),
        limiter=RateLimiter(redis, prefix=f"{settings.broker_namespace}notifications:"),
        limits={
            "telone": settings.telone_rate_per_hour,
            "econet": settings.econet_rate_per_hour,
            "generic_sms": settings.generic_sms_rate_per_hour,
            "whatsapp": settings.whatsapp_rate_per_hour,
        },
        breaker=lambda: CircuitBreaker(settings.circuit_failure_threshold, settings.circuit_reset_s),
        callback_url=callback_url,
    )
    dispatcher = Dispatcher(
        runtime.db,
        sender,
        vault,
        dsn=settings.database_dsn,
        batch_size=settings.dispatcher_batch_size,
        concurrency=settings.dispatcher_concurrency,
        poll_seconds=settings.dispatcher_poll_seconds,
        lease_seconds=settings.dispatch_lease_seconds,
        retry_delays_s=settings.dispatch_retry_delays_s,
        quiet_hours=planner.quiet_hours,
    )
    webhook_http = httpx.AsyncClient(timeout=settings.webhook_timeout_s, follow_redirects=False)
    deliverer = WebhookDeliverer(runtime.db, vault, planner, settings, webhook_http)
    components = Components(settings, vault, templates, planner, http, redis, sender, dispatcher, deliverer)
    if settings.dispatcher_enabled:
        for worker in (dispatcher, deliverer):
            runtime.on_startup.append(worker.start)
            runtime.on_shutdown.append(worker.stop)

    async def close_clients() -> None:
        await http.aclose()
        await webhook_http.aclose()
        await redis.aclose()

    runtime.on_shutdown.insert(0, close_clients)
    return runtime, components


ROUTERS = [messages.router, recipients.router, bulk.router, delivery_reports.router, webhooks.router]


def create_app(settings: Settings | None = None) -> FastAPI:
    runtime, components = build(settings)
    app = runtime.create_app(title="OneClass notifications", routers=ROUTERS)
    app.state.components = components
    return app
