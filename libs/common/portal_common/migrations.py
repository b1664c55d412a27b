"""Alembic, one history per service, driven from Python.

Each service's `migrations/env.py` is three lines that hand its metadata to
`run_alembic_env`. `upgrade_to_head` applies a service's history to a
database; the launcher and the test fixtures call it, and so does
`make migrate` for servers that already exist.
"""

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.ext.asyncio import create_async_engine


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_to_head(migrations_dir: Path, database_url: str) -> None:
    """Apply every migration in `migrations_dir` not yet applied to the database."""
    command.upgrade(alembic_config(migrations_dir, database_url), "head")


def run_alembic_env(target_metadata: MetaData) -> None:
    """The body of a service's `env.py`: online, async migrations."""
    url = context.config.get_main_option("sqlalchemy.url")

    def migrate(connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(migrate)
        await engine.dispose()

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(run())
    else:
        raise RuntimeError("run upgrade_to_head outside a running event loop (use a thread)")
