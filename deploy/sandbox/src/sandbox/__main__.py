"""``oneclass-sandbox``: serve the provider sandbox with settings from ``SANDBOX_*``."""

import uvicorn

from sandbox.app import create_app
from sandbox.settings import SandboxSettings


def main() -> None:
    settings = SandboxSettings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info", access_log=False)


if __name__ == "__main__":
    main()
