from servicekit.runtime import serve

from migration_worker.bootstrap import create_app
from migration_worker.settings import Settings


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
