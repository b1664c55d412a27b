"""Request bodies of the auth API, validated the Django REST Framework way."""

import re

from portal_common.fields import (
    BooleanField,
    CharField,
    EmailField,
    ReadOnly,
    RelatedIdField,
    Serializer,
)

USERNAME_PATTERN = re.compile(r"^[\w.@+-]+\Z")
USERNAME_MESSAGE = (
    "Enter a valid username. This value may contain only letters, numbers, "
    "and @/./+/-/_ characters."
)


def username_rule(value: str) -> str | None:
    return None if USERNAME_PATTERN.match(value) else USERNAME_MESSAGE


class LoginRequest(Serializer):
    username = CharField(max_length=150)
    password = CharField(max_length=4096, trim_whitespace=False)


class UserCreate(Serializer):
    id = ReadOnly()
    username = CharField(max_length=150, validators=[username_rule])
    password = CharField(max_length=4096, trim_whitespace=False)
    email = EmailField(required=False, allow_blank=True, default="")
    is_staff = BooleanField(required=False, default=False)
    is_active = BooleanField(required=False, default=True)
    client = RelatedIdField(required=False, allow_null=True, default=None)


class UserUpdate(UserCreate):
    pass
