"""Fault injection: make a provider answer like an outage on request."""

import asyncio
import random

from pydantic import BaseModel, Field

from sandbox.problems import ProblemError

PROVIDERS = ("telone", "econet", "generic_sms", "whatsapp", "stripe", "paynow", "ecocash", "smtp")


class FaultSpec(BaseModel):
    fail_next: int = Field(default=0, ge=0, description="the next N requests fail")
    status: int = Field(default=503, ge=400, le=599)
    delay_ms: int = Field(default=0, ge=0, le=600_000, description="latency added to every request")
    timeout: bool = Field(default=False, description="failing requests hang for hang_ms before answering")
    hang_ms: int = Field(default=30_000, ge=0, le=600_000)
    fail_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    seed: int | None = Field(default=None, description="makes fail_rate reproducible")


class FaultState(BaseModel):
    spec: FaultSpec
    injected: int = 0


class InjectedFault(ProblemError):
    def __init__(self, provider: str, status: int) -> None:
        super().__init__(
            status,
            f"injected fault: {provider} is unavailable",
            type_="urn:oneclass:sandbox:injected-fault",
            headers={"X-Sandbox-Fault": "injected"},
        )


class FaultRegistry:
    def __init__(self) -> None:
        self._faults: dict[str, FaultState] = {}
        self._rngs: dict[str, random.Random] = {}

    def set(self, provider: str, spec: FaultSpec) -> FaultState:
        state = FaultState(spec=spec)
        self._faults[provider] = state
        self._rngs[provider] = random.Random(spec.seed)
        return state

    def clear(self, provider: str) -> None:
        self._faults.pop(provider, None)
        self._rngs.pop(provider, None)

    def get(self, provider: str) -> FaultState | None:
        return self._faults.get(provider)

    def all(self) -> dict[str, FaultState]:
        return dict(self._faults)

    def reset(self) -> None:
        self._faults.clear()
        self._rngs.clear()

    def should_fail(self, provider: str) -> FaultState | None:
        """Decide (and count) whether this request fails; no waiting, so the SMTP sink can use it too."""
        state = self._faults.get(provider)
        if state is None:
            return None
        spec = state.spec
        failing = False
        if spec.fail_next > 0:
            spec.fail_next -= 1
            failing = True
        elif spec.fail_rate > 0 and self._rngs[provider].random() < spec.fail_rate:
            failing = True
        if failing:
            state.injected += 1
            return state
        return None

    async def gate(self, provider: str) -> None:
        """Called at the start of each provider request: raises the injected outage, if any."""
        state = self._faults.get(provider)
        if state is None:
            return
        if state.spec.delay_ms:
            await asyncio.sleep(state.spec.delay_ms / 1000)
        failing = self.should_fail(provider)
        if failing is None:
            return
        if failing.spec.timeout:
            await asyncio.sleep(failing.spec.hang_ms / 1000)
        raise InjectedFault(provider, failing.spec.status)
