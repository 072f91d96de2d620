"""FastAPI dependencies giving routes the shared parts of the running sandbox."""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from sandbox.callback_urls import CallbackUrls
from sandbox.callbacks import CallbackDispatcher
from sandbox.faults import FaultRegistry
from sandbox.settings import SandboxSettings


def _settings(request: Request) -> SandboxSettings:
    settings: SandboxSettings = request.app.state.sandbox.settings
    return settings


def _dispatcher(request: Request) -> CallbackDispatcher:
    dispatcher: CallbackDispatcher = request.app.state.sandbox.callbacks
    return dispatcher


def _faults(request: Request) -> FaultRegistry:
    faults: FaultRegistry = request.app.state.sandbox.faults
    return faults


def _callback_urls(request: Request) -> CallbackUrls:
    urls: CallbackUrls = request.app.state.sandbox.callback_urls
    return urls


def _public_base(request: Request) -> str:
    settings: SandboxSettings = request.app.state.sandbox.settings
    return (settings.public_base_url or str(request.base_url)).rstrip("/")


SettingsDep = Annotated[SandboxSettings, Depends(_settings)]
DispatcherDep = Annotated[CallbackDispatcher, Depends(_dispatcher)]
FaultsDep = Annotated[FaultRegistry, Depends(_faults)]
CallbackUrlsDep = Annotated[CallbackUrls, Depends(_callback_urls)]
PublicBaseDep = Annotated[str, Depends(_public_base)]


def fault_gate(provider: str) -> Callable[[Request], Awaitable[None]]:
    """A router dependency that turns an injected fault into an outage answer before the route runs."""

    async def gate(request: Request) -> None:
        await _faults(request).gate(provider)

    return gate
