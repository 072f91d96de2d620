"""The one composition root of the payments service: HTTP app, consumers, relay and background work."""

from fastapi import APIRouter, FastAPI
from servicekit.runtime import ServiceRuntime

from payments.entrypoints.http.routes import plans
from payments.entrypoints.messaging.subscriptions import SUBSCRIPTIONS
from payments.settings import Settings

TITLE = "OneClass payments"


def build_runtime(settings: Settings | None = None) -> ServiceRuntime:
    return ServiceRuntime(settings or Settings(), subscriptions=SUBSCRIPTIONS)


def routers() -> list[APIRouter]:
    return [plans.router]


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_runtime(settings).create_app(title=TITLE, routers=routers())
