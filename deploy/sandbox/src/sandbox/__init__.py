"""Local provider sandbox: SMS gateways, WhatsApp, Stripe, PayNow, EcoCash and an SMTP sink."""

from sandbox.app import create_app
from sandbox.runner import RunningSandbox, running_sandbox, sandbox_in_thread
from sandbox.settings import SandboxSettings

__all__ = ["RunningSandbox", "SandboxSettings", "create_app", "running_sandbox", "sandbox_in_thread"]
