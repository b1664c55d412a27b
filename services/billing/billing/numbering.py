"""Invoice numbers: INV-YYYY-NNN, consecutive per year, with no gap and no duplicate.

How it works. `invoice_counter` holds one row per year with the last number
issued. Taking a number is one statement in the invoice's own transaction:

    INSERT INTO invoice_counter (year, last_number) VALUES (:year, 1)
    ON CONFLICT (year) DO UPDATE SET last_number = invoice_counter.last_number + 1
    RETURNING last_number

The row stays locked until that transaction ends, so concurrent creations
(from any number of replicas) take their turns on it and each gets the next
number. If the invoice's transaction rolls back, the counter's increment rolls
back with it, so a failed creation leaves no gap. Unlike "highest number plus
one" this never hands out a number twice, and unlike a database sequence it
never skips one.

The cost: creations within one year are serialised on that row from the
moment the number is taken until commit, so the number is taken as late as
possible, after every check that may fail or wait on another service.

The year is the year of creation in PORTAL_TIME_ZONE. Numbers have at least
three digits and simply grow past 999 (INV-2024-1000).
"""

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing.models import invoice_counter


async def take_next_number(session: AsyncSession, year: int) -> int:
    """The next number of `year`, reserved until the caller's transaction ends."""
    statement = insert(invoice_counter).values(year=year, last_number=1)
    statement = statement.on_conflict_do_update(
        index_elements=[invoice_counter.c.year],
        set_={"last_number": invoice_counter.c.last_number + 1},
    ).returning(invoice_counter.c.last_number)
    return (await session.execute(statement)).scalar_one()


def format_invoice_number(year: int, sequence: int) -> str:
    return f"INV-{year}-{sequence:03d}"
