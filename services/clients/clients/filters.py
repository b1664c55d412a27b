"""A list filter `portal_common.listing` does not have: exact free text.

`plan_tier` is free text ("E-commerce Essentials"), so `ChoiceFilter`, which
needs a fixed list of values, does not fit. Any value is accepted and matched
exactly (case-sensitively), as django-filter's default CharFilter does for a
`filterset_fields` entry.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from portal_common.identity import Identity


@dataclass(frozen=True, eq=False)
class ExactFilter:
    """`?plan_tier=Business%20Process`: rows whose column equals the value."""

    param: str
    column: ColumnElement[Any]

    async def condition(
        self,
        raw: str,
        session: AsyncSession,
        identity: Identity | None,
    ) -> ColumnElement[bool]:
        return self.column == raw
