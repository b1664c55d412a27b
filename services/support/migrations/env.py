from portal_common.migrations import run_alembic_env
from support.models import metadata

run_alembic_env(metadata)
