"""Everything the sandbox remembers, in memory and process local, with one reset."""

from sandbox.callback_urls import CallbackUrls
from sandbox.callbacks import CallbackDispatcher
from sandbox.faults import FaultRegistry
from sandbox.providers.ecocash import EcocashStore
from sandbox.providers.paynow import PaynowStore
from sandbox.providers.receiver import ReceiverStore
from sandbox.providers.sms import SmsBehaviour, SmsStore
from sandbox.providers.stripe_api import StripeStore
from sandbox.providers.whatsapp import WhatsAppBehaviour, WhatsAppStore
from sandbox.settings import SandboxSettings
from sandbox.smtp_sink import EmailStore, SinkHandler, SmtpSink


class Sandbox:
    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.faults = FaultRegistry()
        self.callbacks = CallbackDispatcher(settings.callback_timeout_s)
        self.callback_urls = CallbackUrls(settings.callback_defaults())
        self.sms = SmsStore(
            SmsBehaviour(delivery_reports=settings.sms_delivery_reports, report_delay_ms=settings.sms_report_delay_ms)
        )
        self.whatsapp = WhatsAppStore(
            WhatsAppBehaviour(statuses=settings.whatsapp_statuses, status_delay_ms=settings.whatsapp_status_delay_ms)
        )
        self.stripe = StripeStore()
        self.paynow = PaynowStore()
        self.ecocash = EcocashStore()
        self.emails = EmailStore()
        self.receiver = ReceiverStore()
        self.smtp = SmtpSink(SinkHandler(self.emails, self.faults))

    async def start(self) -> None:
        await self.callbacks.start()
        await self.smtp.start(self.settings.smtp_host, self.settings.smtp_port)

    async def stop(self) -> None:
        await self.smtp.stop()
        await self.callbacks.stop()

    def reset(self) -> None:
        for part in (
            self.faults,
            self.callbacks,
            self.callback_urls,
            self.sms,
            self.whatsapp,
            self.stripe,
            self.paynow,
            self.ecocash,
            self.emails,
            self.receiver,
        ):
            part.reset()
