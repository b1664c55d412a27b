"""The Authorization header rules of DRF's TokenAuthentication (case C05), unit by unit."""

import pytest

from gateway.tokens import TokenCache, parse_authorization
from portal_common.errors import AuthenticationFailed
from portal_common.identity import Identity

KEY = "0123456789abcdef0123456789abcdef01234567"


class TestParseAuthorization:
    @pytest.mark.parametrize(
        "header",
        [f"Token {KEY}", f"token {KEY}", f"TOKEN {KEY}", f"Token  {KEY}  ", f"Bearer {KEY}", f"bearer {KEY}"],
    )
    def test_accepted_forms_give_the_key(self, header):
        assert parse_authorization(header).key == KEY

    @pytest.mark.parametrize("header", [None, "", f"Basic {KEY}", f"Token{KEY}", "   "])
    def test_no_token_credentials_mean_anonymous(self, header):
        assert parse_authorization(header) is None

    @pytest.mark.parametrize(
        ("header", "detail"),
        [
            ("Token", "Invalid token header. No credentials provided."),
            ("Token   ", "Invalid token header. No credentials provided."),
            (f"Token {KEY} extra", "Invalid token header. Token string should not contain spaces."),
            (f"Token {KEY}\xa0", "Invalid token header. Token string should not contain invalid characters."),
        ],
    )
    def test_malformed_headers_are_refused_with_drf_messages(self, header, detail):
        with pytest.raises(AuthenticationFailed) as caught:
            parse_authorization(header)

        assert caught.value.detail == detail
        assert caught.value.headers == {"WWW-Authenticate": "Token"}

    def test_key_hash_is_sha256_hex(self):
        credentials = parse_authorization(f"Token {KEY}")

        assert len(credentials.key_hash) == 64
        assert KEY not in credentials.key_hash


class TestTokenCache:
    def test_dropping_a_user_forgets_all_their_tokens(self):
        cache = TokenCache(ttl_seconds=60)
        cache.put("h1", Identity(user_id=1))
        cache.put("h2", Identity(user_id=1))
        cache.put("h3", Identity(user_id=2))

        cache.drop_user(1)

        assert cache.get("h1") is None and cache.get("h2") is None
        assert cache.get("h3") == Identity(user_id=2)

    def test_entries_expire(self):
        cache = TokenCache(ttl_seconds=-1)
        cache.put("h1", Identity(user_id=1))

        assert cache.get("h1") is None
