import sys

from servicekit.runtime import serve

from notifications.bootstrap import create_app
from notifications.settings import Settings


def main() -> None:
    if len(sys.argv) > 1:
        from notifications.entrypoints.cli import run

        run(sys.argv[1:])
        return
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
