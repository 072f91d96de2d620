"""Composition root: one FastAPI app with every provider imitation, the control API and the SMTP sink."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from sandbox import control
from sandbox.problems import install_problem_handlers
from sandbox.providers import ecocash, paynow, receiver, sms, stripe_api, whatsapp
from sandbox.settings import SandboxSettings
from sandbox.state import Sandbox


def create_app(settings: SandboxSettings | None = None) -> FastAPI:
    sandbox = Sandbox(settings or SandboxSettings())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await sandbox.start()
        try:
            yield
        finally:
            await sandbox.stop()

    app = FastAPI(
        title="OneClass provider sandbox",
        summary="Local stand-ins for SMS gateways, WhatsApp, Stripe, PayNow, EcoCash and SMTP",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.sandbox = sandbox
    install_problem_handlers(app)
    for router in (
        *sms.routers,
        whatsapp.router,
        stripe_api.router,
        stripe_api.control,
        paynow.router,
        paynow.control,
        ecocash.router,
        ecocash.control,
        receiver.router,
        receiver.control,
        control.router,
    ):
        app.include_router(router)
    return app
