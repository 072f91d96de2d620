"""The one composition root of the orders service: HTTP app, consumers and relay."""

from fastapi import FastAPI
from redis.asyncio import Redis
from servicekit.runtime import ServiceRuntime

from orders.adapters.database import app_database
from orders.adapters.secrets import SecretBox
from orders.adapters.uploads import UploadStore
from orders.entrypoints.http.errors import install_domain_error_handler
from orders.entrypoints.http.rate_limit import RateLimitMiddleware, SlidingWindows
from orders.entrypoints.http.routes import ROUTERS
from orders.entrypoints.messaging.subscriptions import SUBSCRIPTIONS
from orders.settings import Settings


def build_runtime(settings: Settings | None = None) -> ServiceRuntime:
    settings = settings or Settings()
    return ServiceRuntime(
        settings, subscriptions=SUBSCRIPTIONS, db=app_database(settings.database_url, settings.db_role)
    )


def create_app(settings: Settings | None = None, runtime: ServiceRuntime | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = runtime or build_runtime(settings)
    app = runtime.create_app(title="OneClass orders gateway", routers=ROUTERS)
    install_domain_error_handler(app)
    app.state.secret_box = SecretBox([k.get_secret_value() for k in settings.data_source_keys])
    app.state.upload_store = UploadStore(settings.upload_dir)
    if settings.rate_limit_enabled:
        redis = Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.redis_timeout_seconds,
            socket_connect_timeout=settings.redis_timeout_seconds,
        )
        windows = SlidingWindows(
            redis,
            prefix=f"{settings.broker_namespace}orders:ratelimit:",
            limit=settings.rate_limit_requests,
            window_seconds=settings.rate_limit_window_seconds,
        )
        app.state.rate_limiter = windows
        runtime.on_shutdown.append(windows.close)
        app.add_middleware(RateLimitMiddleware, windows=windows, window_seconds=settings.rate_limit_window_seconds)
    return app
