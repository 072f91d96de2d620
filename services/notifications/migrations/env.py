from notifications.adapters.tables import metadata
from notifications.settings import Settings
from servicekit.alembic_env import run_migrations

run_migrations([metadata], Settings().database_url)
