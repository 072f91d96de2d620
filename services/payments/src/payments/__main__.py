from servicekit.runtime import serve, serve_workers

from payments.bootstrap import create_app
from payments.settings import Settings


def main() -> None:
    settings = Settings()
    if settings.http_workers > 1:
        serve_workers("payments.bootstrap:create_app", settings)
    else:
        serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
