from portal_common.migrations import run_alembic_env
from clients.models import metadata

run_alembic_env(metadata)
