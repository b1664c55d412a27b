"""Write a new Alembic revision for one service by comparing its models with a scratch database.

Usage: python -m portal_deploy.makemigration <service> "<message>"
A throwaway embedded PostgreSQL is started, the service's existing history is
applied to it, and the difference to the models becomes the new revision.
"""

import asyncio
import sys
import tempfile
from pathlib import Path

from alembic import command

from portal_common.migrations import alembic_config, upgrade_to_head
from portal_deploy.embedded import EmbeddedPostgres, database_url_on, ensure_database
from portal_deploy.services import SERVICES


def main() -> int:
    name, message = sys.argv[1], sys.argv[2]
    spec = next(spec for spec in SERVICES if spec.name == name)
    with tempfile.TemporaryDirectory(prefix="mkmig") as scratch:
        server = EmbeddedPostgres(Path(scratch) / "pg")
        server.start()
        try:
            url = server.url("postgres")
            asyncio.run(ensure_database(url, "scratch"))
            scratch_url = database_url_on(url, "scratch")
            upgrade_to_head(spec.migrations_dir(), scratch_url)
            command.revision(
                alembic_config(spec.migrations_dir(), scratch_url), message=message, autogenerate=True
            )
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
