"""Re-encrypt stored credentials under the newest key.

Usage: `python -m clients.rotate_credentials [--batch-size N]`.

How it works. With `PORTAL_ENCRYPTION_KEYS=new,old` set (the service already
running with it, so it writes under `new` and reads both), this walks the
`credential` table in id order, in batches of `--batch-size` rows. Each
batch is one short transaction that locks only its own rows
(`SELECT … FOR UPDATE`), so the API keeps serving and a concurrent change
to one of those rows simply waits for the batch. A row the newest key
already reads is left alone, which makes the command safe to run again
after an interruption. Afterwards `old` can be removed from the list.

Rows no configured key reads cannot be rotated; they are counted and their
ids logged (never their content), and the exit status is 1 so an operator
notices. Exit status 0 means every credential is now under the newest key.
"""

import argparse
import asyncio
import sys
from dataclasses import dataclass, field
from uuid import UUID

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clients.config import get_settings
from clients.encryption import CredentialCipher, InvalidToken
from clients.models import credentials
from portal_common.db import make_engine, make_sessionmaker
from portal_common.logging import configure_logging

log = structlog.get_logger("clients.rotate_credentials")


@dataclass
class RotationReport:
    rotated: int = 0
    current: int = 0
    unreadable: list[UUID] = field(default_factory=list)


async def rotate_batch(
    session: AsyncSession,
    cipher: CredentialCipher,
    *,
    after: UUID | None,
    batch_size: int,
    report: RotationReport,
) -> UUID | None:
    """Rotate the batch after id `after`; the last id seen, or None at the end."""
    query = select(credentials.c.id, credentials.c.encrypted_data).order_by(
        credentials.c.id
    )
    if after is not None:
        query = query.where(credentials.c.id > after)
    rows = (await session.execute(query.limit(batch_size).with_for_update())).all()

    for credential_id, token in rows:
        if cipher.is_current(token):
            report.current += 1
            continue
        try:
            rotated = cipher.rotate(token)
        except InvalidToken:
            report.unreadable.append(credential_id)
            log.warning("credential.unreadable", credential_id=str(credential_id))
            continue
        await session.execute(
            update(credentials)
            .where(credentials.c.id == credential_id)
            .values(encrypted_data=rotated)
        )
        report.rotated += 1
        log.info("credential.rotated", credential_id=str(credential_id))

    return rows[-1].id if rows else None


async def rotate_all(
    sessions: async_sessionmaker[AsyncSession],
    cipher: CredentialCipher,
    *,
    batch_size: int = 100,
) -> RotationReport:
    report = RotationReport()
    after: UUID | None = None
    while True:
        async with sessions() as session, session.begin():
            after = await rotate_batch(
                session, cipher, after=after, batch_size=batch_size, report=report
            )
        if after is None:
            return report


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clients.rotate_credentials",
        description=(
            "Re-encrypt every stored credential under the newest key "
            "of PORTAL_ENCRYPTION_KEYS."
        ),
    )
    parser.add_argument(
        "--batch-size", type=int, default=100, help="rows per transaction (default 100)"
    )
    arguments = parser.parse_args(argv)
    if arguments.batch_size < 1:
        parser.error("--batch-size must be a positive integer")

    settings = get_settings()
    configure_logging(
        "clients", log_format=settings.log_format, level=settings.log_level
    )
    engine = make_engine(settings.clients_database_url)
    try:
        report = await rotate_all(
            make_sessionmaker(engine),
            CredentialCipher(settings.encryption_keys),
            batch_size=arguments.batch_size,
        )
    finally:
        await engine.dispose()

    log.info(
        "credentials.rotation_finished",
        rotated=report.rotated,
        already_current=report.current,
        unreadable=len(report.unreadable),
    )
    return 1 if report.unreadable else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
