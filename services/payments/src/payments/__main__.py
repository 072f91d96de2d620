from servicekit.runtime import serve_service

from payments.settings import Settings


def main() -> None:
    serve_service("payments.bootstrap:create_app", Settings())


if __name__ == "__main__":
    main()
