"""The one composition root of the orders service: HTTP app, consumers and relay."""

from fastapi import FastAPI
from servicekit.runtime import ServiceRuntime

from orders.entrypoints.http.routes import orders
from orders.entrypoints.messaging.subscriptions import SUBSCRIPTIONS
from orders.settings import Settings


def build_runtime(settings: Settings | None = None) -> ServiceRuntime:
    return ServiceRuntime(settings or Settings(), subscriptions=SUBSCRIPTIONS)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_runtime(settings).create_app(title="OneClass orders gateway", routers=[orders.router])
