import sys

from servicekit.runtime import serve_service

from notifications.settings import Settings


def main() -> None:
    if len(sys.argv) > 1:
        from notifications.entrypoints.cli import run

        run(sys.argv[1:])
        return
    serve_service("notifications.bootstrap:create_app", Settings())


if __name__ == "__main__":
    main()
