"""Request validation with Django REST Framework 3.14's rules and messages."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from portal_common.errors import ValidationFailed
from portal_common.fields import (
    BooleanField,
    CharField,
    ChoiceField,
    DateField,
    DateTimeField,
    DecimalField,
    EmailField,
    IntegerField,
    JSONObjectField,
    ReadOnly,
    Serializer,
    UUIDField,
    iso_date,
    iso_datetime,
    money,
    rate,
)

CLIENT_ID = "5b0c0a4e-6a3e-4c61-9d0a-2f1d7f6c0b11"


class InvoiceCreate(Serializer):
    client = UUIDField(source="client_id")
    amount = DecimalField(max_digits=10, decimal_places=2, min_value=Decimal("0.00"))
    type = ChoiceField(("setup", "monthly", "additional"))
    status = ChoiceField(
        ("pending", "paid", "overdue"), required=False, default="pending"
    )
    due_date = DateField()
    paid_date = DateField(required=False, allow_null=True)
    stripe_invoice_id = CharField(max_length=100, required=False, allow_blank=True)
    invoice_number = ReadOnly()


def invoice(**overrides):
    body = {
        "client": CLIENT_ID,
        "amount": "299",
        "type": "setup",
        "due_date": "2024-02-01",
    }
    body.update(overrides)
    return body


def errors_of(serializer, body, **options):
    with pytest.raises(ValidationFailed) as caught:
        serializer.validate(body, **options)
    return caught.value.detail


def one_field(field, value):
    """Validate `value` with a one-field serializer: its value, or its messages."""
    holder = type("Holder", (Serializer,), {"value": field})
    try:
        return holder.validate({"value": value})["value"]
    except ValidationFailed as error:
        return error.detail["value"]


class TestMoneyCasesC18:
    @pytest.mark.parametrize(
        ("sent", "stored"),
        [
            ("299", "299.00"),
            (299, "299.00"),
            (" 299.00 ", "299.00"),
            (299.5, "299.50"),
            ("1e2", "100.00"),
            ("12345678.90", "12345678.90"),
        ],
    )
    def test_accepted_amounts_become_two_decimal_strings(self, sent, stored):
        data = InvoiceCreate.validate(invoice(amount=sent))

        assert data["amount"] == Decimal(stored)
        assert str(data["amount"]) == stored
        assert money(data["amount"]) == stored

    @pytest.mark.parametrize(
        ("sent", "message"),
        [
            ("299.999", "Ensure that there are no more than 2 decimal places."),
            ("299.995", "Ensure that there are no more than 2 decimal places."),
            ("-1", "Ensure this value is greater than or equal to 0.00."),
            ("123456789.00", "Ensure that there are no more than 10 digits in total."),
            ("NaN", "A valid number is required."),
            ("Infinity", "A valid number is required."),
            ("", "A valid number is required."),
            (True, "A valid number is required."),
            (None, "This field may not be null."),
        ],
    )
    def test_refused_amounts_answer_drf_messages(self, sent, message):
        assert errors_of(InvoiceCreate, invoice(amount=sent)) == {"amount": [message]}

    def test_success_rate_is_a_float_with_two_places(self):
        assert rate(49, 50) == 98.0
        assert rate(2, 3) == 66.67
        assert rate(0, 0) == 0.0
        assert isinstance(rate(1, 3), float)


class TestDecimalField:
    field = DecimalField(max_digits=5, decimal_places=2)

    def test_whole_digits_are_limited_by_the_digits_left_for_them(self):
        assert one_field(self.field, "1234.5") == [
            "Ensure that there are no more than 3 digits before the decimal point."
        ]

    def test_small_fractions_count_their_leading_zeros(self):
        assert one_field(self.field, "0.001") == [
            "Ensure that there are no more than 2 decimal places."
        ]

    def test_negative_zero_is_plain_zero(self):
        assert str(one_field(self.field, "-0")) == "0.00"

    def test_max_value_and_objects(self):
        capped = DecimalField(decimal_places=2, max_value=Decimal("10"))

        assert one_field(capped, "11") == [
            "Ensure this value is less than or equal to 10."
        ]
        assert one_field(capped, [1]) == ["A valid number is required."]
        assert one_field(capped, "9" * 40) == ["A valid number is required."]
        assert one_field(capped, "1" * 1001) == ["String value too large."]


class TestCharField:
    def test_strings_are_trimmed(self):
        assert one_field(CharField(), "  Acme  ") == "Acme"
        assert one_field(CharField(trim_whitespace=False), "  Acme  ") == "  Acme  "

    def test_numbers_become_strings_but_booleans_and_objects_do_not(self):
        assert one_field(CharField(), 42) == "42"
        assert one_field(CharField(), 1.5) == "1.5"
        for junk in (True, {"a": 1}, ["a"]):
            assert one_field(CharField(), junk) == ["Not a valid string."]

    def test_blank_is_refused_unless_allowed(self):
        assert one_field(CharField(), "") == ["This field may not be blank."]
        assert one_field(CharField(), "   ") == ["This field may not be blank."]
        assert one_field(CharField(allow_blank=True, min_length=3), "  ") == ""

    def test_lengths(self):
        assert one_field(CharField(max_length=3), "abcd") == [
            "Ensure this field has no more than 3 characters."
        ]
        assert one_field(CharField(min_length=3), "ab") == [
            "Ensure this field has at least 3 characters."
        ]

    def test_characters_postgres_cannot_store_are_refused(self):
        assert one_field(CharField(), "a\x00b") == ["Null characters are not allowed."]
        assert one_field(CharField(), "a\ud800") == [
            "Surrogate characters are not allowed: U+D800."
        ]

    def test_custom_validators_add_their_messages(self):
        def no_acme(value):
            return "Acme is taken." if "acme" in value.lower() else None

        def no_digits(value):
            if any(c.isdigit() for c in value):
                raise ValidationFailed.field("name", "No digits.")

        field = CharField(max_length=5, validators=[no_acme, no_digits])

        assert one_field(field, "Acme 1") == [
            "Ensure this field has no more than 5 characters.",
            "Acme is taken.",
            "No digits.",
        ]
        assert one_field(field, "Globx") == "Globx"


class TestEmailField:
    @pytest.mark.parametrize(
        "address",
        ["jane@acme.example", "a.b+c@sub.acme.io", "admin@localhost", "x@[10.0.0.1]"],
    )
    def test_valid_addresses(self, address):
        assert one_field(EmailField(), address) == address

    @pytest.mark.parametrize(
        "address",
        [
            "jane",
            "jane@",
            "@acme.com",
            "jane@acme",
            "jane@@acme.com",
            "ja ne@acme.com",
            "jane@acme..com",
            "jane@-acme.com",
            "jane@[999.1.1.1]",
        ],
    )
    def test_invalid_addresses(self, address):
        assert one_field(EmailField(), address) == ["Enter a valid email address."]

    def test_blank_is_its_own_message(self):
        assert one_field(EmailField(), "") == ["This field may not be blank."]
        assert one_field(EmailField(allow_blank=True), "") == ""


class TestChoiceField:
    field = ChoiceField(("low", "medium", "high"))

    def test_choices_are_exact(self):
        assert one_field(self.field, "low") == "low"
        assert one_field(self.field, "LOW") == ['"LOW" is not a valid choice.']
        assert one_field(self.field, "") == ['"" is not a valid choice.']

    def test_the_input_is_shown_as_a_string(self):
        assert one_field(self.field, 3) == ['"3" is not a valid choice.']
        assert one_field(self.field, True) == ['"True" is not a valid choice.']


class TestIntegerField:
    field = IntegerField(min_value=0, max_value=10)

    @pytest.mark.parametrize(
        ("sent", "value"), [(5, 5), ("5", 5), (5.0, 5), ("7.00", 7)]
    )
    def test_integral_inputs(self, sent, value):
        assert one_field(self.field, sent) == value

    @pytest.mark.parametrize("sent", [5.5, "5.5", True, "1e3", "", "five", [1]])
    def test_other_inputs(self, sent):
        assert one_field(self.field, sent) == ["A valid integer is required."]

    def test_bounds(self):
        assert one_field(self.field, -1) == [
            "Ensure this value is greater than or equal to 0."
        ]
        assert one_field(self.field, 11) == [
            "Ensure this value is less than or equal to 10."
        ]


class TestDateAndTime:
    date_message = (
        "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
    )
    datetime_message = (
        "Datetime has wrong format. Use one of these formats instead: "
        "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
    )

    def test_dates(self):
        assert one_field(DateField(), "2024-01-15") == dt.date(2024, 1, 15)
        assert one_field(DateField(), "2024-1-5") == dt.date(2024, 1, 5)
        for junk in ("2024-02-30", "15/01/2024", "", "tomorrow", 20240115):
            assert one_field(DateField(), junk) == [self.date_message]

    def test_datetimes_are_returned_in_utc(self):
        utc = dt.UTC

        assert one_field(DateTimeField(), "2024-01-15T14:30:00Z") == dt.datetime(
            2024, 1, 15, 14, 30, tzinfo=utc
        )
        assert one_field(DateTimeField(), "2024-01-15T16:30:00+02:00") == dt.datetime(
            2024, 1, 15, 14, 30, tzinfo=utc
        )
        assert one_field(DateTimeField(), "2024-01-15 14:30") == dt.datetime(
            2024, 1, 15, 14, 30, tzinfo=utc
        )

    def test_bad_datetimes(self):
        for junk in ("2024-01-15T25:00", "yesterday", "", 1705329000):
            assert one_field(DateTimeField(), junk) == [self.datetime_message]
        assert one_field(DateTimeField(), "0001-01-01T00:00:00+05:00") == [
            "Datetime value out of range."
        ]


class TestOtherKinds:
    def test_uuids_in_any_form(self):
        expected = uuid.UUID(CLIENT_ID)

        assert one_field(UUIDField(), CLIENT_ID.upper()) == expected
        assert one_field(UUIDField(), CLIENT_ID.replace("-", "")) == expected
        for junk in ("not-a-uuid", "", True, [CLIENT_ID]):
            assert one_field(UUIDField(), junk) == ["Must be a valid UUID."]

    def test_booleans(self):
        for truthy in (True, "true", "True", "yes", "on", "1", 1, "t"):
            assert one_field(BooleanField(), truthy) is True
        for falsy in (False, "false", "FALSE", "no", "off", "0", 0, "f"):
            assert one_field(BooleanField(), falsy) is False
        for junk in ("maybe", "", 2, [True], {"a": 1}):
            assert one_field(BooleanField(), junk) == ["Must be a valid boolean."]
        assert one_field(BooleanField(allow_null=True), "null") is None

    def test_json_objects(self):
        assert one_field(JSONObjectField(), {"key": [1, 2]}) == {"key": [1, 2]}
        assert one_field(JSONObjectField(), [1]) == [
            'Expected a dictionary of items but got type "list".'
        ]
        assert one_field(JSONObjectField(), "{}") == [
            'Expected a dictionary of items but got type "str".'
        ]


class TestSerializer:
    def test_a_valid_body_gives_internal_values_by_source(self):
        data = InvoiceCreate.validate(invoice(paid_date=None))

        assert data == {
            "client_id": uuid.UUID(CLIENT_ID),
            "amount": Decimal("299.00"),
            "type": "setup",
            "status": "pending",
            "due_date": dt.date(2024, 2, 1),
            "paid_date": None,
        }

    def test_every_missing_required_field_is_reported_in_declaration_order(self):
        detail = errors_of(InvoiceCreate, {})

        assert list(detail) == ["client", "amount", "type", "due_date"]
        assert set(map(tuple, detail.values())) == {("This field is required.",)}

    def test_all_errors_come_at_once(self):
        body = invoice(
            client="x", amount="-1", type="bogus", due_date=None, status=None
        )

        assert errors_of(InvoiceCreate, body) == {
            "client": ["Must be a valid UUID."],
            "amount": ["Ensure this value is greater than or equal to 0.00."],
            "type": ['"bogus" is not a valid choice.'],
            "status": ["This field may not be null."],
            "due_date": ["This field may not be null."],
        }

    def test_read_only_and_unknown_keys_are_ignored(self):
        body = invoice(invoice_number="INV-1999-001", id="whatever", hacked=True)

        data = InvoiceCreate.validate(body)

        assert "invoice_number" not in data
        assert "id" not in data and "hacked" not in data

    def test_partial_validation_takes_only_the_keys_present(self):
        assert InvoiceCreate.validate({"amount": "5"}, partial=True) == {
            "amount": Decimal("5.00")
        }
        assert InvoiceCreate.validate({}, partial=True) == {}
        assert errors_of(InvoiceCreate, {"type": "x"}, partial=True) == {
            "type": ['"x" is not a valid choice.']
        }

    def test_a_body_that_is_not_an_object(self):
        assert errors_of(InvoiceCreate, ["a"]) == {
            "non_field_errors": ["Invalid data. Expected a dictionary, but got list."]
        }

    def test_subclasses_inherit_and_extend_fields(self):
        class InvoiceImport(InvoiceCreate):
            note = CharField(required=False)

        assert list(InvoiceImport.fields)[-1] == "note"
        assert "amount" in errors_of(InvoiceImport, {"note": "x"})
        assert "note" not in InvoiceCreate.fields

    def test_callable_defaults_are_called_each_time(self):
        class Tagged(Serializer):
            tags = JSONObjectField(required=False, default=dict)

        first, second = Tagged.validate({}), Tagged.validate({})

        assert first == {"tags": {}}
        assert first["tags"] is not second["tags"]

    def test_json_schema_describes_the_writable_fields(self):
        schema = InvoiceCreate.json_schema()

        assert schema["type"] == "object"
        assert schema["required"] == ["client", "amount", "type", "due_date"]
        assert "invoice_number" not in schema["properties"]
        assert schema["properties"]["type"] == {
            "enum": ["setup", "monthly", "additional"]
        }
        assert schema["properties"]["client"] == {"type": "string", "format": "uuid"}
        assert schema["properties"]["paid_date"] == {
            "anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]
        }
        assert schema["properties"]["stripe_invoice_id"]["maxLength"] == 100
        assert (
            InvoiceCreate.openapi_extra()["requestBody"]["content"]["application/json"][
                "schema"
            ]
            == schema
        )


class TestOutputHelpers:
    def test_money(self):
        assert money(Decimal("299")) == "299.00"
        assert money(Decimal("12345678.9")) == "12345678.90"
        assert money(Decimal("-0.00")) == "0.00"
        assert money(None) is None

    def test_iso_datetime_is_utc_with_z(self):
        paris = dt.timezone(dt.timedelta(hours=1))

        assert iso_datetime(dt.datetime(2024, 1, 15, 15, 30, tzinfo=paris)) == (
            "2024-01-15T14:30:00Z"
        )
        assert iso_datetime(dt.datetime(2024, 1, 15, 14, 30, 0, 120000)) == (
            "2024-01-15T14:30:00.120000Z"
        )
        assert iso_datetime(None) is None

    def test_iso_date(self):
        assert iso_date(dt.date(2024, 1, 5)) == "2024-01-05"
        assert iso_date(dt.datetime(2024, 1, 5, 23, 0)) == "2024-01-05"
        assert iso_date(None) is None
