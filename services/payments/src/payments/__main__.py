from servicekit.runtime import serve

from payments.bootstrap import create_app
from payments.settings import Settings


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
