from clients.models import metadata
from portal_common.migrations import run_alembic_env

run_alembic_env(metadata)
