from servicekit.runtime import serve

from notifications.bootstrap import create_app
from notifications.settings import Settings


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
