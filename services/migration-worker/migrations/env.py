from migration_worker.adapters.tables import metadata
from migration_worker.settings import Settings
from servicekit.alembic_env import run_migrations

run_migrations([metadata], Settings().database_url)
