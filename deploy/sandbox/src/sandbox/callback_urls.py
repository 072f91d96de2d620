"""Where each provider sends its callbacks: the configured default unless a test pointed it elsewhere."""


class CallbackUrls:
    def __init__(self, defaults: dict[str, str]) -> None:
        self._defaults = dict(defaults)
        self._overrides: dict[str, str] = {}

    def get(self, provider: str) -> str:
        return self._overrides.get(provider) or self._defaults[provider]

    def set(self, provider: str, url: str) -> None:
        if provider not in self._defaults:
            raise KeyError(provider)
        self._overrides[provider] = url

    def all(self) -> dict[str, str]:
        return {name: self.get(name) for name in self._defaults}

    def reset(self) -> None:
        self._overrides.clear()
