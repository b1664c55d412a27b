"""Paginated lists that behave like Django REST Framework 3.14's, declared as data.

A `ListSpec` names, per resource, the exact filters, the search columns, the
ordering fields with their default, and the tie-breaking column. `paginate`
applies it to a SQLAlchemy select in the order DRF does:

1. filters (`?status=active&client=<uuid>`): every value is checked first and
   all errors are raised together as one 400; a UUID filter may look its id
   up in one small query, only when the parameter is given;
2. search (`?search=acme jane`): every word must match, case-insensitively,
   somewhere in at least one search column;
3. ordering (`?ordering=-monthly_fee,company_name`): unknown terms are dropped,
   and the tie-breaking column follows in the direction of the last term, so
   paging is stable;
4. paging (`?page=2&page_size=25`): one COUNT, then one SELECT of the page.

So a page costs two statements whatever its size (plus one per UUID filter
given). The `next` and `previous` links are absolute, as the caller sees the
gateway (X-Forwarded-Proto and X-Forwarded-Host), and keep the other query
parameters.

Every value a caller can send ends as a 200, a 400 or a 404: a filter value
with a NUL character is invalid (no choice, date or id contains one, and no
stored text does), other parameters lose their NULs (DRF strips them from
`search`), because asyncpg refuses to send one to PostgreSQL; nothing from
the query string becomes SQL except through bound parameters and the
declared columns.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit

from sqlalchemy import (
    ColumnElement,
    Enum,
    Select,
    String,
    cast,
    false,
    func,
    or_,
    select,
)
from sqlalchemy import exists as sql_exists
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from portal_common.errors import NotFound, ValidationFailed
from portal_common.identity import Identity

__all__ = [
    "ChoiceFilter",
    "DateFilter",
    "Filter",
    "FilterError",
    "ListSpec",
    "Page",
    "UUIDFilter",
    "paginate",
]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
LAST_PAGE = "last"


class FilterError(Exception):
    """A filter value the caller must correct; its message goes in the 400."""


class Filter(Protocol):
    """An exact filter on one query parameter."""

    param: str

    async def condition(
        self,
        raw: str,
        session: AsyncSession,
        identity: Identity | None,
    ) -> ColumnElement[bool]:
        """The WHERE condition for the non-empty value `raw`; raises FilterError."""
        ...


@dataclass(frozen=True, eq=False)
class ChoiceFilter:
    """`?status=active`: one of fixed values, case-sensitive."""

    param: str
    column: ColumnElement[Any]
    choices: Sequence[str]

    async def condition(
        self,
        raw: str,
        session: AsyncSession,
        identity: Identity | None,
    ) -> ColumnElement[bool]:
        if raw not in self.choices:
            raise FilterError(
                f"Select a valid choice. {raw} is not one of the available choices."
            )
        return self.column == raw


@dataclass(frozen=True, eq=False)
class ExactFilter:
    """`?plan_tier=Business%20Process`: free text matched exactly, case-sensitively.

    django-filter's default for a `filterset_fields` entry on a text column:
    any value is accepted and compared as it is.
    """

    param: str
    column: ColumnElement[Any]

    async def condition(
        self,
        raw: str,
        session: AsyncSession,
        identity: Identity | None,
    ) -> ColumnElement[bool]:
        if "\x00" in raw:
            return false()  # PostgreSQL text never holds a NUL
        return self.column == raw


# Django forms.DateField with the `en` locale's numeric input formats.
DATE_INPUT_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%m/%d/%y")


@dataclass(frozen=True, eq=False)
class DateFilter:
    """`?execution_date=2024-01-15` (also 01/15/2024 and 01/15/24, as Django reads)."""

    param: str
    column: ColumnElement[Any]

    async def condition(
        self,
        raw: str,
        session: AsyncSession,
        identity: Identity | None,
    ) -> ColumnElement[bool]:
        return self.column == parse_filter_date(raw)


def parse_filter_date(raw: str) -> dt.date:
    for date_format in DATE_INPUT_FORMATS:
        try:
            return dt.datetime.strptime(raw.strip(), date_format).date()
        except ValueError:
            continue
    raise FilterError("Enter a valid date.")


ExistsCheck = Callable[[AsyncSession, uuid.UUID, "Identity | None"], Awaitable[bool]]


@dataclass(frozen=True, eq=False)
class UUIDFilter:
    """`?client=<uuid>`: rows referring to one object, which must exist.

    `exists` says where the object is looked up: the id column of a local
    table (one `SELECT EXISTS`), an async callable `(session, id, identity)`
    returning a bool, or None to skip the check. An unknown id is a 400, as
    in DRF.

    `owner`, the client column of that same table, limits the look-up to the
    caller's own rows when the caller is a client user, so another client's
    object answers exactly like a missing one.

    `owner_scoped=True` marks a filter whose value is itself a client id. For
    a client user, any well-formed id other than their own gives an empty
    page with no look-up at all, so ids cannot be probed (CONTRACT.md §2).
    """

    param: str
    column: ColumnElement[Any]
    exists: ColumnElement[Any] | ExistsCheck | None
    owner: ColumnElement[Any] | None = None
    owner_scoped: bool = False

    async def condition(
        self,
        raw: str,
        session: AsyncSession,
        identity: Identity | None,
    ) -> ColumnElement[bool]:
        object_id = parse_filter_uuid(raw)
        client_user = identity is not None and not identity.is_staff
        if self.owner_scoped and client_user:
            if object_id != identity.client_id:
                return false()
            return self.column == object_id
        if not await self._known(session, object_id, identity):
            raise FilterError(
                "Select a valid choice. "
                "That choice is not one of the available choices."
            )
        return self.column == object_id

    async def _known(
        self,
        session: AsyncSession,
        object_id: uuid.UUID,
        identity: Identity | None,
    ) -> bool:
        if self.exists is None:
            return True
        if not _is_column(self.exists):
            return await self.exists(session, object_id, identity)
        criteria = [self.exists == object_id]
        if self.owner is not None and identity is not None and not identity.is_staff:
            criteria.append(self.owner == identity.client_id)
        return bool(await session.scalar(select(sql_exists().where(*criteria))))


def _is_column(candidate: object) -> bool:
    is_orm_attribute = hasattr(candidate, "__clause_element__")
    return isinstance(candidate, ColumnElement) or is_orm_attribute


def parse_filter_uuid(raw: str) -> uuid.UUID:
    """Any form `uuid.UUID` reads; Django's message (curly quotes) otherwise."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise FilterError(f"\u201c{raw}\u201d is not a valid UUID.") from None


@dataclass(frozen=True, eq=False)
class ListSpec:
    """What one list endpoint lets callers filter, search and order by.

    `ordering` maps the public field name to its column; `default_ordering`
    uses those names (`"-created_at"`); `tiebreak` is a unique column (the
    id) that settles ties. Raises ValueError at import time for a default
    term that is not an ordering field.
    """

    filters: Sequence[Filter] = ()
    search: Sequence[ColumnElement[Any]] = ()
    ordering: Mapping[str, ColumnElement[Any]] = field(default_factory=dict)
    default_ordering: Sequence[str] = ()
    tiebreak: ColumnElement[Any] | None = None

    def __post_init__(self) -> None:
        known = self.ordering.keys()
        unknown = [t for t in self.default_ordering if t.removeprefix("-") not in known]
        if unknown:
            raise ValueError(f"default ordering names unknown fields: {unknown}")

    def query_parameters(self) -> list[dict[str, Any]]:
        """OpenAPI parameter objects for the list route's `openapi_extra`."""
        params = [
            _query_param("page", "A page number, or `last`."),
            _query_param("page_size", "Results per page (default 50, at most 100)."),
        ]
        for spec_filter in self.filters:
            params.append(_query_param(spec_filter.param, "Exact match."))
        if self.search:
            params.append(_query_param("search", "Words that must all match."))
        if self.ordering:
            names = ", ".join(self.ordering)
            params.append(_query_param("ordering", f"Comma-separated; any of {names}."))
        return params


def _query_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


@dataclass(frozen=True)
class Page:
    """One page of rows (SQLAlchemy RowMappings) and the links around it."""

    count: int
    next: str | None
    previous: str | None
    rows: Sequence[Any]

    def body(self, serialize: Callable[[Any], Any]) -> dict[str, Any]:
        """The response body: `{"count", "next", "previous", "results"}`."""
        return {
            "count": self.count,
            "next": self.next,
            "previous": self.previous,
            "results": [serialize(row) for row in self.rows],
        }


async def paginate(
    session: AsyncSession,
    request: Request,
    statement: Select[Any],
    spec: ListSpec,
    *,
    identity: Identity | None = None,
) -> Page:
    """The page the request's query string asks for, from `statement`.

    `statement` is already scoped to what the caller may see; its own ORDER
    BY is replaced by the spec's. `identity` is the caller's, for the UUID
    filters' ownership rules (None: no rules). Rows are RowMappings.
    Raises ValidationFailed (400) for bad filter values and NotFound (404,
    "Invalid page.") for a page that is not a positive integer, `last`, or
    within the pages.
    """
    # Filter values are checked as sent: a NUL makes them invalid (400), as
    # in DRF, rather than silently matching something else. Everything else
    # loses its NULs, which asyncpg could not send anyway.
    raw_params = dict(request.query_params)
    params = {key: value.replace("\x00", "") for key, value in raw_params.items()}
    page_size = parse_page_size(params.get("page_size"))

    conditions = await _filter_conditions(spec, raw_params, session, identity)
    conditions += _search_conditions(spec, params.get("search", ""))
    filtered = statement.where(*conditions).order_by(None)

    count_query = select(func.count()).select_from(filtered.subquery())
    count = (await session.scalar(count_query)) or 0
    last_page = max(1, math.ceil(count / page_size))
    page_number = resolve_page_number(params.get("page"), last_page)

    rows: Sequence[Any] = []
    if count:
        ordered = filtered.order_by(*_order_by(spec, params.get("ordering")))
        page_query = ordered.limit(page_size).offset((page_number - 1) * page_size)
        rows = (await session.execute(page_query)).mappings().all()
    return _page(request, count, rows, page_number, last_page)


def parse_page_size(raw: str | None) -> int:
    """DRF's `_positive_int(strict=True, cutoff=100)`, else the default 50."""
    try:
        size = int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return DEFAULT_PAGE_SIZE
    if size <= 0:
        return DEFAULT_PAGE_SIZE
    return min(size, MAX_PAGE_SIZE)


def resolve_page_number(raw: str | None, last_page: int) -> int:
    """Django's Paginator.validate_number; an absent `page` is page 1.

    An empty `page=` is invalid, as in DRF 3.14 (later versions read it as 1).
    """
    if raw is None:
        return 1
    if raw == LAST_PAGE:
        return last_page
    try:
        number = int(raw)
    except ValueError:
        raise NotFound("Invalid page.") from None
    if not 1 <= number <= last_page:
        raise NotFound("Invalid page.")
    return number


async def _filter_conditions(
    spec: ListSpec,
    params: Mapping[str, str],
    session: AsyncSession,
    identity: Identity | None,
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    errors: dict[str, list[str]] = {}
    for spec_filter in spec.filters:
        raw = params.get(spec_filter.param, "")
        if raw == "":
            continue
        try:
            conditions.append(await spec_filter.condition(raw, session, identity))
        except FilterError as error:
            errors[spec_filter.param] = [str(error)]
    if errors:
        raise ValidationFailed(errors)
    return conditions


def search_terms(raw: str) -> list[str]:
    """DRF 3.14: commas and whitespace separate words; quotes are literal."""
    return raw.replace("\x00", "").replace(",", " ").split()


def _search_conditions(spec: ListSpec, raw: str) -> list[ColumnElement[bool]]:
    if not spec.search:
        return []
    columns = [_as_text(column) for column in spec.search]
    return [
        or_(*(column.icontains(term, autoescape=True) for column in columns))
        for term in search_terms(raw)
    ]


def _as_text(column: ColumnElement[Any]) -> ColumnElement[Any]:
    is_text = isinstance(column.type, String) and not isinstance(column.type, Enum)
    return column if is_text else cast(column, String)


def ordering_terms(raw: str | None, allowed: Iterable[str]) -> list[str]:
    """DRF's OrderingFilter: keep the terms that name an allowed field.

    One leading "-" means descending; "--x" and unknown names are dropped.
    """
    allowed = set(allowed)
    terms = [term.strip() for term in (raw or "").split(",")]
    return [term for term in terms if term.removeprefix("-") in allowed]


def _order_by(spec: ListSpec, raw: str | None) -> list[ColumnElement[Any]]:
    terms = ordering_terms(raw, spec.ordering) or list(spec.default_ordering)
    clauses = [_direction(spec.ordering[t.removeprefix("-")], t) for t in terms]
    if spec.tiebreak is not None:
        last_term = terms[-1] if terms else ""
        clauses.append(_direction(spec.tiebreak, last_term))
    return clauses


def _direction(column: ColumnElement[Any], term: str) -> ColumnElement[Any]:
    return column.desc() if term.startswith("-") else column.asc()


def _page(
    request: Request,
    count: int,
    rows: Sequence[Any],
    number: int,
    last_page: int,
) -> Page:
    url = absolute_url(request)
    next_link = None
    if number < last_page:
        next_link = replace_query_param(url, "page", number + 1)
    if number <= 1:
        previous_link = None
    elif number == 2:
        previous_link = remove_query_param(url, "page")
    else:
        previous_link = replace_query_param(url, "page", number - 1)
    return Page(count=count, next=next_link, previous=previous_link, rows=rows)


_HOST = re.compile(r"[A-Za-z0-9.\-_]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


def absolute_url(request: Request) -> str:
    """The request's URL as the caller sent it to the gateway.

    Scheme and host come from the first X-Forwarded-Proto and X-Forwarded-Host
    values when they are well-formed, else from the request itself.
    """
    scheme = _first(request.headers.get("x-forwarded-proto")).lower()
    if scheme not in ("http", "https"):
        scheme = request.url.scheme
    host = _first(request.headers.get("x-forwarded-host"))
    if not _HOST.fullmatch(host):
        host = request.url.netloc
    raw_path = request.scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else quote(request.url.path)
    query = request.scope.get("query_string", b"").decode("latin-1")
    return urlunsplit((scheme, host, path, query, ""))


def _first(header: str | None) -> str:
    return (header or "").split(",")[0].strip()


def replace_query_param(url: str, key: str, value: Any) -> str:
    """DRF's helper: set `key`, then re-encode the query sorted by name."""
    scheme, netloc, path, query, fragment = urlsplit(url)
    query_dict = parse_qs(query, keep_blank_values=True)
    query_dict[key] = [str(value)]
    query = urlencode(sorted(query_dict.items()), doseq=True)
    return urlunsplit((scheme, netloc, path, query, fragment))


def remove_query_param(url: str, key: str) -> str:
    """DRF's helper: drop `key`, then re-encode the query sorted by name."""
    scheme, netloc, path, query, fragment = urlsplit(url)
    query_dict = parse_qs(query, keep_blank_values=True)
    query_dict.pop(key, None)
    query = urlencode(sorted(query_dict.items()), doseq=True)
    return urlunsplit((scheme, netloc, path, query, fragment))
