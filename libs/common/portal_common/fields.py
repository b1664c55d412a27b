"""Request bodies validated as Django REST Framework 3.14 validates them.

A `Serializer` subclass declares its fields as class attributes, in the order
its errors are reported:

    class InvoiceCreate(Serializer):
        client = UUIDField(source="client_id")
        amount = DecimalField(max_digits=10, decimal_places=2, min_value=Decimal("0"))
        invoice_number = ReadOnly()

`InvoiceCreate.validate(body)` checks every field, then either returns a dict
of internal values (keyed by `source`, else by the field's name) or raises
`ValidationFailed({"field": ["message", …], …})` carrying the errors of all
fields at once. The messages are DRF's, word for word, because existing
clients show them to people. Unknown keys and `ReadOnly` fields in the body
are ignored. `validate(body, partial=True)` is PATCH: only the keys present
are checked and returned, and defaults are not applied.

What this does not do: nested objects and lists of values, and DRF's special
reading of HTML form input (an unchecked checkbox meaning False, an empty
optional value meaning "absent"). Form bodies are validated like JSON whose
values are all strings, which suits the login form and little else.

The output helpers at the end (`money`, `iso_datetime`, `iso_date`, `rate`)
shape response values the way DRF renders them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal, DecimalException
from typing import Any, ClassVar

from portal_common.errors import ValidationFailed

__all__ = [
    "BooleanField",
    "CharField",
    "ChoiceField",
    "DateField",
    "DateTimeField",
    "DecimalField",
    "EmailField",
    "Field",
    "IntegerField",
    "Invalid",
    "JSONObjectField",
    "ReadOnly",
    "Serializer",
    "UUIDField",
    "iso_date",
    "iso_datetime",
    "money",
    "rate",
]


class _Missing:
    """The marker for "no value given", so that None can be a value."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

# A validator gets the internal value and returns None when it is fine, or a
# message (or several); raising ValidationFailed works too.
Validator = Callable[[Any], "str | Iterable[str] | None"]


class Invalid(Exception):
    """One field's messages; collected by `Serializer.validate`."""

    def __init__(self, *messages: str) -> None:
        super().__init__(*messages)
        self.messages = list(messages)


class _Skip(Exception):
    """The field is absent and has no default: leave it out of the result."""


class Field:
    """A value in a request body: presence, null and custom validator rules.

    `required` defaults to True unless a `default` is given; `default` may be
    a callable, called on each use. `source` renames the key in the result
    (`client` in the body, `client_id` for the repository). Each callable in
    `validators` gets the internal value and returns None or a message.
    """

    openapi: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        *,
        required: bool | None = None,
        default: Any = MISSING,
        allow_null: bool = False,
        source: str | None = None,
        validators: Iterable[Validator] = (),
        help_text: str | None = None,
    ) -> None:
        if required is None:
            required = default is MISSING
        if required and default is not MISSING:
            raise ValueError("a required field cannot have a default")
        self.required = required
        self.default = default
        self.allow_null = allow_null
        self.source = source
        self.validators = tuple(validators)
        self.help_text = help_text

    def clean(self, data: Any, *, partial: bool = False) -> Any:
        """The internal value of `data` (MISSING when the key was absent).

        Raises Invalid with the field's messages, or _Skip when the field
        stays out of the result.
        """
        if data is MISSING:
            return self._absent(partial)
        if data is None:
            if not self.allow_null:
                raise Invalid("This field may not be null.")
            return None
        return self.run_validation(data)

    def run_validation(self, data: Any) -> Any:
        value = self.to_internal(data)
        messages = self.check(value) + self._custom_messages(value)
        if messages:
            raise Invalid(*messages)
        return value

    def to_internal(self, data: Any) -> Any:
        return data

    def check(self, value: Any) -> list[str]:
        """Messages of the field's own rules (lengths, bounds) on a parsed value."""
        return []

    def json_schema(self) -> dict[str, Any]:
        schema = dict(self.openapi)
        if self.help_text:
            schema["description"] = self.help_text
        if self.default is not MISSING and not callable(self.default):
            schema["default"] = _schema_default(self.default)
        if self.allow_null:
            schema = {"anyOf": [schema, {"type": "null"}]}
        return schema

    def _absent(self, partial: bool) -> Any:
        if partial:
            raise _Skip()
        if self.required:
            raise Invalid("This field is required.")
        if self.default is MISSING:
            raise _Skip()
        return self.default() if callable(self.default) else self.default

    def _custom_messages(self, value: Any) -> list[str]:
        messages: list[str] = []
        for validator in self.validators:
            try:
                outcome = validator(value)
            except ValidationFailed as error:
                outcome = _flatten(error.detail)
            if isinstance(outcome, str):
                messages.append(outcome)
            elif outcome:
                messages.extend(str(message) for message in outcome)
        return messages


def _flatten(detail: Any) -> list[str]:
    if isinstance(detail, str):
        return [detail]
    if isinstance(detail, Mapping):
        return [message for value in detail.values() for message in _flatten(value)]
    return [str(message) for message in detail]


def _schema_default(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    return str(value)


class ReadOnly(Field):
    """A field the API shows but never takes: present in a body, it is ignored."""

    def __init__(self) -> None:
        super().__init__(required=False)


class CharField(Field):
    """A string; numbers are accepted and turned into strings, like DRF does."""

    openapi = {"type": "string"}

    def __init__(
        self,
        *,
        max_length: int | None = None,
        min_length: int | None = None,
        allow_blank: bool = False,
        trim_whitespace: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.max_length = max_length
        self.min_length = min_length
        self.allow_blank = allow_blank
        self.trim_whitespace = trim_whitespace

    def run_validation(self, data: Any) -> Any:
        # DRF tests for blank before anything else, so a blank value skips
        # every other rule (min_length included) when blanks are allowed.
        blank = data == "" or (self.trim_whitespace and str(data).strip() == "")
        if blank:
            if not self.allow_blank:
                raise Invalid("This field may not be blank.")
            return ""
        return super().run_validation(data)

    def to_internal(self, data: Any) -> str:
        if isinstance(data, bool) or not isinstance(data, (str, int, float)):
            raise Invalid("Not a valid string.")
        value = str(data)
        return value.strip() if self.trim_whitespace else value

    def check(self, value: str) -> list[str]:
        messages = []
        if self.max_length is not None and len(value) > self.max_length:
            messages.append(
                f"Ensure this field has no more than {self.max_length} characters."
            )
        if self.min_length is not None and len(value) < self.min_length:
            messages.append(
                f"Ensure this field has at least {self.min_length} characters."
            )
        # PostgreSQL cannot store either; DRF refuses both on every CharField.
        if "\x00" in value:
            messages.append("Null characters are not allowed.")
        surrogate = next((c for c in value if 0xD800 <= ord(c) <= 0xDFFF), None)
        if surrogate is not None:
            messages.append(
                f"Surrogate characters are not allowed: U+{ord(surrogate):X}."
            )
        return messages

    def json_schema(self) -> dict[str, Any]:
        schema = super().json_schema()
        target = schema["anyOf"][0] if "anyOf" in schema else schema
        if self.max_length is not None:
            target["maxLength"] = self.max_length
        if self.min_length is not None:
            target["minLength"] = self.min_length
        elif not self.allow_blank:
            target["minLength"] = 1
        return schema


# Django's EmailValidator, which DRF's EmailField uses:
# https://github.com/django/django/blob/stable/4.2.x/django/core/validators.py
_EMAIL_USER = re.compile(
    r"(^[-!#$%&'*+/=?^_`{}|~0-9A-Z]+(\.[-!#$%&'*+/=?^_`{}|~0-9A-Z]+)*\Z"
    r'|^"([\001-\010\013\014\016-\037!#-\[\]-\177]'
    r'|\\[\001-\011\013\014\016-\177])*"\Z)',
    re.IGNORECASE,
)
_EMAIL_DOMAIN = re.compile(
    r"((?:[A-Z0-9](?:[A-Z0-9-]{0,61}[A-Z0-9])?\.)+)(?:[A-Z0-9-]{2,63}(?<!-))\Z",
    re.IGNORECASE,
)
_EMAIL_LITERAL = re.compile(r"\[([A-F0-9:.]+)\]\Z", re.IGNORECASE)
_EMAIL_DOMAIN_ALLOWLIST = ("localhost",)


def is_valid_email(value: str) -> bool:
    """Django's rules: dot-atom or quoted local part; a dotted, IDN or IP domain."""
    if not value or "@" not in value or len(value) > 320:
        return False
    user_part, domain_part = value.rsplit("@", 1)
    if not _EMAIL_USER.match(user_part):
        return False
    if domain_part in _EMAIL_DOMAIN_ALLOWLIST or _is_valid_domain(domain_part):
        return True
    try:
        ascii_domain = domain_part.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return _is_valid_domain(ascii_domain)


def _is_valid_domain(domain: str) -> bool:
    if _EMAIL_DOMAIN.match(domain):
        return True
    literal = _EMAIL_LITERAL.match(domain)
    if literal is None:
        return False
    try:
        ipaddress.ip_address(literal[1])
    except ValueError:
        return False
    return True


class EmailField(CharField):
    """An e-mail address; `max_length` defaults to Django's 254."""

    openapi = {"type": "string", "format": "email"}

    def __init__(self, *, max_length: int | None = 254, **options: Any) -> None:
        super().__init__(max_length=max_length, **options)

    def check(self, value: str) -> list[str]:
        messages = super().check(value)
        if not is_valid_email(value):
            messages.append("Enter a valid email address.")
        return messages


class ChoiceField(Field):
    """One of fixed strings, compared case-sensitively with `str()` of the input."""

    def __init__(
        self,
        choices: Iterable[str],
        *,
        allow_blank: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.choices = tuple(choices)
        self.allow_blank = allow_blank
        self._by_text = {str(choice): choice for choice in self.choices}

    def to_internal(self, data: Any) -> Any:
        if data == "" and self.allow_blank:
            return ""
        text = str(data)
        if text not in self._by_text:
            raise Invalid(f'"{text}" is not a valid choice.')
        return self._by_text[text]

    def json_schema(self) -> dict[str, Any]:
        enum: list[Any] = list(self.choices)
        if self.allow_blank:
            enum.append("")
        if self.allow_null:
            enum.append(None)
        schema: dict[str, Any] = {"enum": enum}
        if self.default is not MISSING and not callable(self.default):
            schema["default"] = _schema_default(self.default)
        if self.help_text:
            schema["description"] = self.help_text
        return schema


def _bound_messages(value: Any, min_value: Any, max_value: Any) -> list[str]:
    messages = []
    if max_value is not None and value > max_value:
        messages.append(f"Ensure this value is less than or equal to {max_value}.")
    if min_value is not None and value < min_value:
        messages.append(f"Ensure this value is greater than or equal to {min_value}.")
    return messages


# DRF refuses longer strings before parsing them, so no one can make the
# parser chew on megabytes of digits.
MAX_NUMBER_STRING_LENGTH = 1000
_INTEGRAL_DECIMAL_TAIL = re.compile(r"\.0*\s*$")


class IntegerField(Field):
    """An integer: 5, "5" and 5.0 are accepted; 5.5, "1e3" and true are not.

    PostgreSQL's `integer` holds ±2147483647; give `max_value` for such a
    column, or a huge number would fail in the database instead of here.
    """

    openapi = {"type": "integer"}

    def __init__(
        self,
        *,
        min_value: int | None = None,
        max_value: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.min_value = min_value
        self.max_value = max_value

    def to_internal(self, data: Any) -> int:
        if isinstance(data, str) and len(data) > MAX_NUMBER_STRING_LENGTH:
            raise Invalid("String value too large.")
        try:
            return int(_INTEGRAL_DECIMAL_TAIL.sub("", str(data)))
        except (ValueError, TypeError):
            raise Invalid("A valid integer is required.") from None

    def check(self, value: int) -> list[str]:
        return _bound_messages(value, self.min_value, self.max_value)

    def json_schema(self) -> dict[str, Any]:
        schema = super().json_schema()
        target = schema["anyOf"][0] if "anyOf" in schema else schema
        if self.min_value is not None:
            target["minimum"] = self.min_value
        if self.max_value is not None:
            target["maximum"] = self.max_value
        return schema


class DecimalField(Field):
    """A decimal number, quantized to `decimal_places`; answered as a string.

    Follows DRF's DecimalField: the input's text is stripped and parsed as a
    Decimal ("1e2" is 100); NaN and infinities are refused; the digits are
    counted before quantizing, so "299.995" is refused rather than rounded.
    """

    openapi = {"type": "string", "format": "decimal"}

    def __init__(
        self,
        *,
        max_digits: int | None = None,
        decimal_places: int | None = None,
        min_value: Decimal | None = None,
        max_value: Decimal | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.max_digits = max_digits
        self.decimal_places = decimal_places
        self.min_value = min_value
        self.max_value = max_value
        if max_digits is not None and decimal_places is not None:
            self.max_whole_digits: int | None = max_digits - decimal_places
        else:
            self.max_whole_digits = None

    def to_internal(self, data: Any) -> Decimal:
        text = str(data).strip()
        if len(text) > MAX_NUMBER_STRING_LENGTH:
            raise Invalid("String value too large.")
        try:
            value = Decimal(text)
        except DecimalException:
            raise Invalid("A valid number is required.") from None
        if value.is_nan() or value.is_infinite():
            raise Invalid("A valid number is required.")
        self._check_precision(value)
        return self._quantize(value)

    def _check_precision(self, value: Decimal) -> None:
        total, whole, places = _digit_counts(value)
        if self.max_digits is not None and total > self.max_digits:
            raise Invalid(
                f"Ensure that there are no more than {self.max_digits} digits in total."
            )
        if self.decimal_places is not None and places > self.decimal_places:
            raise Invalid(
                "Ensure that there are no more than "
                f"{self.decimal_places} decimal places."
            )
        if self.max_whole_digits is not None and whole > self.max_whole_digits:
            raise Invalid(
                "Ensure that there are no more than "
                f"{self.max_whole_digits} digits before the decimal point."
            )

    def _quantize(self, value: Decimal) -> Decimal:
        if value.is_zero():
            value = abs(value)  # "-0" must not come back as "-0.00"
        if self.decimal_places is None:
            return value
        try:
            return value.quantize(Decimal(1).scaleb(-self.decimal_places))
        except DecimalException:
            # Only without max_digits: more digits than the context holds.
            raise Invalid("A valid number is required.") from None

    def check(self, value: Decimal) -> list[str]:
        return _bound_messages(value, self.min_value, self.max_value)

    def json_schema(self) -> dict[str, Any]:
        schema = super().json_schema()
        target = schema["anyOf"][0] if "anyOf" in schema else schema
        if self.decimal_places is not None:
            target["example"] = str(Decimal(0).scaleb(-self.decimal_places))
        return schema


def _digit_counts(value: Decimal) -> tuple[int, int, int]:
    """(total digits, digits before the point, digits after it), as DRF counts."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if exponent >= 0:
        total = len(digits) + exponent
        return total, total, 0
    if len(digits) > -exponent:
        return len(digits), len(digits) + exponent, -exponent
    return -exponent, 0, -exponent


_DATE_PATTERN = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})\Z")


class DateField(Field):
    """A calendar date in ISO 8601 (`YYYY-MM-DD`)."""

    openapi = {"type": "string", "format": "date"}

    def to_internal(self, data: Any) -> dt.date:
        message = "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
        if not isinstance(data, str):
            raise Invalid(message)
        try:
            return dt.date.fromisoformat(data)
        except ValueError:
            pass
        match = _DATE_PATTERN.match(data)
        try:
            if match:
                return dt.date(*(int(part) for part in match.groups()))
        except ValueError:
            pass
        raise Invalid(message)


class DateTimeField(Field):
    """An ISO 8601 moment, returned in UTC; one without an offset is taken as UTC."""

    openapi = {"type": "string", "format": "date-time"}

    def to_internal(self, data: Any) -> dt.datetime:
        moment = _parse_datetime(data) if isinstance(data, str) else None
        if moment is None:
            raise Invalid(_DATETIME_MESSAGE)
        if moment.tzinfo is None:
            return moment.replace(tzinfo=dt.UTC)
        try:
            return moment.astimezone(dt.UTC)
        except OverflowError:
            raise Invalid("Datetime value out of range.") from None


_DATETIME_MESSAGE = (
    "Datetime has wrong format. Use one of these formats instead: "
    "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
)
# Django's parse_datetime: Python's ISO parser, then this more lenient form.
# https://github.com/django/django/blob/stable/4.2.x/django/utils/dateparse.py
_DATETIME_PATTERN = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})"
    r"[T ](?P<hour>\d{1,2}):(?P<minute>\d{1,2})"
    r"(?::(?P<second>\d{1,2})(?:[\.,](?P<microsecond>\d{1,6})\d{0,6})?)?"
    r"\s*(?P<tzinfo>Z|[+-]\d{2}(?::?\d{2})?)?\Z"
)


def _parse_datetime(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        pass
    match = _DATETIME_PATTERN.match(text)
    if match is None:
        return None
    parts = match.groupdict()
    offset = parts.pop("tzinfo")
    parts["microsecond"] = (parts["microsecond"] or "0").ljust(6, "0")
    try:
        return dt.datetime(
            **{key: int(value) for key, value in parts.items() if value is not None},
            tzinfo=_fixed_offset(offset),
        )
    except ValueError:
        return None


def _fixed_offset(offset: str | None) -> dt.tzinfo | None:
    if offset is None:
        return None
    if offset == "Z":
        return dt.UTC
    minutes = 60 * int(offset[1:3]) + (int(offset[-2:]) if len(offset) > 3 else 0)
    return dt.timezone(dt.timedelta(minutes=-minutes if offset[0] == "-" else minutes))


class RelatedIdField(Field):
    """The id of a related object (a UUID key), read as DRF's PrimaryKeyRelatedField.

    Only the form is checked here; whether the object exists is the service's
    question, answered with `does_not_exist(pk)` as DRF words it.
    """

    openapi = {"type": "string", "format": "uuid"}

    def to_internal(self, data: Any) -> uuid.UUID:
        if isinstance(data, bool) or not isinstance(data, str | int):
            kind = type(data).__name__
            raise Invalid(f"Incorrect type. Expected pk value, received {kind}.")
        try:
            # Django's UUIDField reads an integer as the UUID's 128-bit value.
            return uuid.UUID(int=data) if isinstance(data, int) else uuid.UUID(data)
        except ValueError:
            raise Invalid(f"\u201c{data}\u201d is not a valid UUID.") from None


def does_not_exist(pk: Any) -> str:
    """DRF's message for a related id that names nothing."""
    return f'Invalid pk "{pk}" - object does not exist.'


class UUIDField(Field):
    """A UUID in any form `uuid.UUID` reads (any case, with or without dashes)."""

    openapi = {"type": "string", "format": "uuid"}

    def to_internal(self, data: Any) -> uuid.UUID:
        try:
            if isinstance(data, str):
                return uuid.UUID(data)
            if isinstance(data, int) and not isinstance(data, bool):
                return uuid.UUID(int=data)
        except ValueError:
            pass
        raise Invalid("Must be a valid UUID.")


class BooleanField(Field):
    """true/false, and the strings and numbers DRF reads as booleans."""

    openapi = {"type": "boolean"}
    # DRF's sets; 1 also stands for True, and 0 for 0.0 and False.
    TRUE_VALUES = frozenset(
        {"t", "T", "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE"}
        | {"on", "On", "ON", "1", 1}
    )
    FALSE_VALUES = frozenset(
        {"f", "F", "n", "N", "no", "No", "NO", "false", "False", "FALSE"}
        | {"off", "Off", "OFF", "0", 0}
    )
    NULL_VALUES = frozenset({"null", "Null", "NULL", ""})

    def to_internal(self, data: Any) -> bool | None:
        try:
            if data in self.TRUE_VALUES:
                return True
            if data in self.FALSE_VALUES:
                return False
            if data in self.NULL_VALUES and self.allow_null:
                return None
        except TypeError:
            pass  # unhashable: a list or an object
        raise Invalid("Must be a valid boolean.")


class JSONObjectField(Field):
    """A JSON object (a dict), taken as it is."""

    openapi = {"type": "object", "additionalProperties": True}

    def to_internal(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            kind = _json_type_name(data)
            raise Invalid(f'Expected a dictionary of items but got type "{kind}".')
        return data


def _json_type_name(data: Any) -> str:
    return type(data).__name__


class Serializer:
    """A request body declared as fields; see the module docstring."""

    fields: ClassVar[dict[str, Field]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = {name: f for name, f in vars(cls).items() if isinstance(f, Field)}
        cls.fields = {**cls.fields, **own}

    @classmethod
    def validate(cls, data: Any, *, partial: bool = False) -> dict[str, Any]:
        """The internal values of `data`, keyed by each field's source.

        Raises ValidationFailed with every field's messages, in declaration
        order, or `non_field_errors` when `data` is not an object.
        """
        if not isinstance(data, dict):
            kind = _json_type_name(data)
            raise ValidationFailed.non_field(
                f"Invalid data. Expected a dictionary, but got {kind}."
            )
        values: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        for name, field in cls.fields.items():
            if isinstance(field, ReadOnly):
                continue
            try:
                value = field.clean(data.get(name, MISSING), partial=partial)
            except Invalid as error:
                errors[name] = error.messages
            except _Skip:
                continue
            else:
                values[field.source or name] = value
        if errors:
            raise ValidationFailed(errors)
        return values

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON schema of the request body (read-only fields left out)."""
        writable = {
            name: field
            for name, field in cls.fields.items()
            if not isinstance(field, ReadOnly)
        }
        schema: dict[str, Any] = {
            "title": cls.__name__,
            "type": "object",
            "properties": {name: f.json_schema() for name, f in writable.items()},
        }
        required = [name for name, field in writable.items() if field.required]
        if required:
            schema["required"] = required
        return schema

    @classmethod
    def openapi_extra(cls) -> dict[str, Any]:
        """`openapi_extra` for a route that takes this body as JSON."""
        content = {"application/json": {"schema": cls.json_schema()}}
        return {"requestBody": {"required": True, "content": content}}


_CENT = Decimal("0.01")


def money(value: Decimal | int | str | None) -> str | None:
    """An amount as the API shows it: a string with exactly two decimals."""
    if value is None:
        return None
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    amount = amount.quantize(_CENT, rounding=ROUND_HALF_UP)
    return str(abs(amount) if amount.is_zero() else amount)


def iso_datetime(value: dt.datetime | None) -> str | None:
    """DRF's rendering: ISO 8601 in UTC, `Z` for the offset; naive means UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    text = value.astimezone(dt.UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def iso_date(value: dt.date | None) -> str | None:
    """`YYYY-MM-DD`; a datetime is reduced to its own date."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        value = value.date()
    return value.isoformat()


def rate(numerator: float | Decimal, denominator: float | Decimal) -> float:
    """A percentage rounded to two places; 0.0 when there is nothing to divide."""
    if not denominator:
        return 0.0
    return round(float(numerator) / float(denominator) * 100, 2)
