from servicekit.runtime import serve_service

from orders.settings import Settings


def main() -> None:
    serve_service("orders.bootstrap:create_app", Settings())


if __name__ == "__main__":
    main()
