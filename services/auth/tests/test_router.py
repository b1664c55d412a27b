"""The auth API through the gateway, as the frontend and scripts use it."""

import asyncio
import re
import uuid

import pytest


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def from_address() -> dict[str, str]:
    """A distinct caller address, so throttling of one test never touches another."""
    return {"X-Forwarded-For": f"198.51.100.{uuid.uuid4().int % 250 + 1}-{uuid.uuid4().hex[:6]}"}


async def make_user(portal, **kwargs) -> tuple[str, str, dict]:
    username = unique("user")
    password = "correct-Horse-9"
    async with portal.client(portal.admin_token) as http:
        created = await http.post(
            "/api/auth/users/",
            json={"username": username, "password": password, "email": f"{username}@example.com", **kwargs},
        )
    assert created.status_code == 201, created.text
    return username, password, created.json()


class TestLogin:
    async def test_login_with_json_answers_a_new_40_hex_token_and_the_user(self, portal):
        username, password, user = await make_user(portal)

        async with portal.client() as http:
            response = await http.post("/api/auth/token/", json={"username": username, "password": password})

        assert response.status_code == 200
        body = response.json()
        assert re.fullmatch(r"[0-9a-f]{40}", body["token"])
        assert body == {
            "token": body["token"],
            "user_id": user["id"],
            "username": username,
            "email": f"{username}@example.com",
            "is_staff": False,
            "client": None,
        }
        assert isinstance(body["user_id"], int)

    async def test_login_with_form_data_works_too(self, portal):
        username, password, _ = await make_user(portal)

        async with portal.client() as http:
            response = await http.post("/api/auth/token/", data={"username": username, "password": password})

        assert response.status_code == 200
        assert len(response.json()["token"]) == 40

    async def test_every_login_issues_another_token_and_all_stay_valid(self, portal):
        username, password, _ = await make_user(portal)

        first = await portal.login(username, password)
        second = await portal.login(username, password)

        assert first != second
        for token in (first, second):
            async with portal.client(token) as http:
                assert (await http.get("/api/auth/me/")).status_code == 200

    async def test_missing_fields_are_named(self, portal):
        async with portal.client() as http:
            response = await http.post("/api/auth/token/", json={}, headers=from_address())

        assert response.status_code == 400
        assert response.json() == {
            "username": ["This field is required."],
            "password": ["This field is required."],
        }

    @pytest.mark.parametrize("case", ["wrong password", "unknown user", "inactive user"])
    async def test_bad_credentials_get_one_message(self, portal, case):
        username, password, user = await make_user(portal)
        if case == "inactive user":
            async with portal.client(portal.admin_token) as http:
                await http.patch(f"/api/auth/users/{user['id']}/", json={"is_active": False})
        attempt = {
            "wrong password": {"username": username, "password": "nope"},
            "unknown user": {"username": unique("ghost"), "password": password},
            "inactive user": {"username": username, "password": password},
        }[case]

        async with portal.client() as http:
            response = await http.post("/api/auth/token/", json=attempt, headers=from_address())

        assert response.status_code == 400
        assert response.json() == {"non_field_errors": ["Unable to log in with provided credentials."]}

    async def test_repeated_failures_for_one_username_are_throttled(self, portal):
        username, password, _ = await make_user(portal)

        async with portal.client() as http:
            answers = [
                await http.post("/api/auth/token/", json={"username": username, "password": "bad"}, headers=from_address())
                for _ in range(6)
            ]
            # Even the right password waits until the window has passed.
            right = await http.post("/api/auth/token/", json={"username": username, "password": password}, headers=from_address())

        assert [a.status_code for a in answers] == [400] * 5 + [429]
        for throttled in (answers[-1], right):
            assert throttled.status_code == 429
            wait = int(throttled.headers["Retry-After"])
            assert 0 < wait <= 300
            assert throttled.json() == {"detail": f"Request was throttled. Expected available in {wait} seconds."}

    async def test_repeated_failures_from_one_address_are_throttled(self, portal):
        address = {"X-Forwarded-For": f"203.0.113.{uuid.uuid4().int % 250}-{uuid.uuid4().hex[:6]}"}

        async with portal.client() as http:
            statuses = [
                (await http.post("/api/auth/token/", json={"username": unique("x"), "password": "bad"}, headers=address)).status_code
                for _ in range(21)
            ]

        assert statuses == [400] * 20 + [429]


class TestLogout:
    async def test_logout_revokes_the_token_at_once(self, portal):
        username, password, _ = await make_user(portal)
        token = await portal.login(username, password)
        other = await portal.login(username, password)

        async with portal.client(token) as http:
            assert (await http.get("/api/auth/me/")).status_code == 200  # now cached
            response = await http.post("/api/auth/logout/")
            after = await http.get("/api/auth/me/")

        assert response.status_code == 200
        assert response.json() == {"message": "Successfully logged out"}
        assert after.status_code == 401
        assert after.json() == {"detail": "Invalid token."}
        async with portal.client(other) as http:
            assert (await http.get("/api/auth/me/")).status_code == 200

    async def test_logout_without_a_token_is_401(self, portal):
        async with portal.client() as http:
            response = await http.post("/api/auth/logout/")

        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Token"


class TestMe:
    async def test_me_describes_the_caller(self, portal):
        username, password, user = await make_user(portal)
        token = await portal.login(username, password)

        async with portal.client(token) as http:
            response = await http.get("/api/auth/me/")

        assert response.status_code == 200
        assert response.json() == {
            "id": user["id"],
            "username": username,
            "email": f"{username}@example.com",
            "is_staff": False,
            "client": None,
        }


class TestUsers:
    async def test_staff_create_read_update_and_delete_a_user(self, portal):
        async with portal.client(portal.admin_token) as http:
            username = unique("crud")
            created = await http.post(
                "/api/auth/users/", json={"username": username, "password": "pw-12345678", "email": "c@example.com"}
            )
            user_id = created.json()["id"]
            read = await http.get(f"/api/auth/users/{user_id}/")
            patched = await http.patch(f"/api/auth/users/{user_id}/", json={"email": "new@example.com", "is_staff": True})
            deleted = await http.delete(f"/api/auth/users/{user_id}/")
            gone = await http.get(f"/api/auth/users/{user_id}/")

        assert created.status_code == 201
        assert created.json() == {
            "id": user_id, "username": username, "email": "c@example.com",
            "is_staff": False, "is_active": True, "client": None,
        }
        assert "password" not in read.json()
        assert read.json() == created.json()
        assert patched.status_code == 200
        assert patched.json()["email"] == "new@example.com" and patched.json()["is_staff"] is True
        assert deleted.status_code == 204
        assert gone.status_code == 404
        assert gone.json() == {"detail": "Not found."}

    async def test_users_are_listed_with_drf_pagination(self, portal):
        async with portal.client(portal.admin_token) as http:
            response = await http.get("/api/auth/users/", params={"page_size": 1})

        body = response.json()
        assert response.status_code == 200
        assert set(body) == {"count", "next", "previous", "results"}
        assert body["count"] >= 1 and len(body["results"]) == 1
        assert body["previous"] is None

    async def test_a_duplicate_username_is_refused(self, portal):
        username, _, _ = await make_user(portal)

        async with portal.client(portal.admin_token) as http:
            response = await http.post("/api/auth/users/", json={"username": username, "password": "pw-12345678"})

        assert response.status_code == 400
        assert response.json() == {"username": ["A user with that username already exists."]}

    async def test_bad_user_bodies_get_field_errors_and_change_nothing(self, portal):
        async with portal.client(portal.admin_token) as http:
            before = (await http.get("/api/auth/users/")).json()["count"]
            missing = await http.post("/api/auth/users/", json={})
            invalid = await http.post(
                "/api/auth/users/",
                json={"username": "bad name!", "password": "", "email": "not-an-email", "is_staff": "maybe", "client": "x"},
            )
            after = (await http.get("/api/auth/users/")).json()["count"]

        assert missing.status_code == 400
        assert missing.json() == {"username": ["This field is required."], "password": ["This field is required."]}
        assert invalid.status_code == 400
        assert set(invalid.json()) == {"username", "password", "email", "is_staff", "client"}
        assert invalid.json()["email"] == ["Enter a valid email address."]
        assert before == after

    async def test_an_unknown_client_is_refused(self, portal):
        async with portal.client(portal.admin_token) as http:
            response = await http.post(
                "/api/auth/users/",
                json={"username": unique("u"), "password": "pw-12345678", "client": str(uuid.UUID(int=0))},
            )

        assert response.status_code == 400
        assert list(response.json()) == ["client"]

    @pytest.mark.parametrize("user_id", ["abc", "0", "99999999", "1.5", "-1"])
    async def test_odd_user_ids_are_404(self, portal, user_id):
        async with portal.client(portal.admin_token) as http:
            response = await http.get(f"/api/auth/users/{user_id}/")

        assert response.status_code == 404
        assert response.json() == {"detail": "Not found."}

    async def test_users_are_staff_only(self, portal):
        username, password, _ = await make_user(portal)
        token = await portal.login(username, password)

        async with portal.client(token) as http:
            answers = [
                await http.get("/api/auth/users/"),
                await http.post("/api/auth/users/", json={"username": "x", "password": "y"}),
                await http.get("/api/auth/users/1/"),
                await http.delete("/api/auth/users/999999/"),
            ]

        for answer in answers:
            assert answer.status_code == 403
            assert answer.json() == {"detail": "You do not have permission to perform this action."}

    async def test_deactivating_a_user_refuses_their_cached_token_within_a_second(self, portal):
        username, password, user = await make_user(portal)
        token = await portal.login(username, password)
        async with portal.client(token) as http:
            assert (await http.get("/api/auth/me/")).status_code == 200  # cached in the gateway now

        async with portal.client(portal.admin_token) as http:
            await http.patch(f"/api/auth/users/{user['id']}/", json={"is_active": False})
        await asyncio.sleep(1.0)
        async with portal.client(token) as http:
            response = await http.get("/api/auth/me/")

        assert response.status_code == 401
        assert response.json() == {"detail": "User inactive or deleted."}

    async def test_a_reactivated_user_needs_a_new_login(self, portal):
        username, password, user = await make_user(portal)
        token = await portal.login(username, password)

        async with portal.client(portal.admin_token) as http:
            await http.patch(f"/api/auth/users/{user['id']}/", json={"is_active": False})
            await http.patch(f"/api/auth/users/{user['id']}/", json={"is_active": True})
        await asyncio.sleep(1.0)
        async with portal.client(token) as http:
            old = await http.get("/api/auth/me/")

        assert old.status_code == 401
        assert old.json() == {"detail": "Invalid token."}
        assert await portal.login(username, password)

    async def test_deleting_a_user_revokes_their_tokens(self, portal):
        username, password, user = await make_user(portal)
        token = await portal.login(username, password)
        async with portal.client(token) as http:
            assert (await http.get("/api/auth/me/")).status_code == 200

        async with portal.client(portal.admin_token) as http:
            assert (await http.delete(f"/api/auth/users/{user['id']}/")).status_code == 204
        await asyncio.sleep(1.0)
        async with portal.client(token) as http:
            response = await http.get("/api/auth/me/")

        assert response.status_code == 401
        assert response.json() == {"detail": "Invalid token."}
