"""Path ids: anything that is not a UUID is simply not found."""

from uuid import UUID

import pytest

from portal_common.errors import NotFound
from portal_common.http import path_uuid

ID = "a1b2c3d4-5678-90ab-cdef-1234567890ab"


@pytest.mark.parametrize("raw", [ID, ID.upper(), ID.replace("-", "")])
def test_every_spelling_of_a_uuid_is_read(raw):
    assert path_uuid(raw) == UUID(ID)


@pytest.mark.parametrize("raw", ["", "abc", "me", "1", ID + "0", ID[:-1] + "g", "\x00"])
def test_anything_else_is_not_found(raw):
    with pytest.raises(NotFound) as caught:
        path_uuid(raw)

    assert caught.value.detail == "Not found."
