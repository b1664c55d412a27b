"""The gateway from outside: authentication, routing, limits, headers, health."""

import json
import uuid
from pathlib import Path

import httpx
import pytest

from portal_common.identity import Identity, IdentitySigner, generate_keypair


async def user_token(portal, **fields) -> tuple[str, dict]:
    username = f"gw{uuid.uuid4().hex[:8]}"
    async with portal.client(portal.admin_token) as http:
        created = await http.post("/api/auth/users/", json={"username": username, "password": "pw-12345678", **fields})
    assert created.status_code == 201, created.text
    return await portal.login(username, "pw-12345678"), created.json()


class TestAuthorizationHeader:
    """Case C05: every form of the header, through the gateway."""

    # HTTP itself drops whitespace around a header value (RFC 9110 §5.5), so
    # the trailing spaces of C05 never reach us; the unit tests cover them.
    @pytest.mark.parametrize("form", ["Token {k}", "token {k}", "TOKEN {k}", "Token  {k}", "Bearer {k}"])
    async def test_accepted_forms(self, portal, form):
        token, _ = await user_token(portal)

        async with portal.client() as http:
            response = await http.get("/api/auth/me/", headers={"Authorization": form.format(k=token)})

        assert response.status_code == 200

    @pytest.mark.parametrize(
        ("form", "detail"),
        [
            ("Token", "Invalid token header. No credentials provided."),
            ("Token {k} extra", "Invalid token header. Token string should not contain spaces."),
            ("Token {short}", "Invalid token."),
            ("Token {upper}", "Invalid token."),
            ("Token{k}", "Authentication credentials were not provided."),
            ("Basic {k}", "Authentication credentials were not provided."),
        ],
    )
    async def test_refused_forms(self, portal, form, detail):
        token, _ = await user_token(portal)
        header = form.format(k=token, short=token[:-1], upper=token.upper())

        async with portal.client() as http:
            response = await http.get("/api/auth/me/", headers={"Authorization": header})

        assert response.status_code == 401
        assert response.json() == {"detail": detail}
        assert response.headers["WWW-Authenticate"] == "Token"

    async def test_a_trailing_no_break_space_is_invalid_characters(self, portal):
        token, _ = await user_token(portal)
        raw = b"Token " + token.encode() + b"\xa0"

        async with portal.client() as http:
            response = await http.get("/api/auth/me/", headers=[(b"Authorization", raw)])

        assert response.status_code == 401
        assert response.json() == {
            "detail": "Invalid token header. Token string should not contain invalid characters."
        }

    async def test_no_header_at_all(self, portal):
        async with portal.client() as http:
            response = await http.get("/api/auth/me/")

        assert response.status_code == 401
        assert response.json() == {"detail": "Authentication credentials were not provided."}
        assert response.headers["WWW-Authenticate"] == "Token"

    async def test_an_inactive_users_token(self, portal):
        token, user = await user_token(portal)
        async with portal.client(portal.admin_token) as http:
            await http.patch(f"/api/auth/users/{user['id']}/", json={"is_active": False})

        async with portal.client(token) as http:
            response = await http.get("/api/auth/me/")

        assert response.status_code == 401
        assert response.json() == {"detail": "User inactive or deleted."}


class TestBypassingTheGateway:
    def auth_url(self, portal) -> str:
        return portal.system.processes["auth"][0].url

    async def test_a_request_straight_to_a_service_is_refused(self, portal):
        async with httpx.AsyncClient() as http:
            response = await http.get(self.auth_url(portal) + "/api/auth/users/")
            login = await http.post(
                self.auth_url(portal) + "/api/auth/token/",
                json={"username": portal.admin_username, "password": portal.admin_password},
            )

        assert response.status_code == 403
        assert login.status_code == 403
        assert "token" not in login.text

    async def test_a_forged_identity_is_refused(self, portal):
        private, _ = generate_keypair()
        forged = IdentitySigner(private).sign(Identity(user_id=1, is_staff=True), method="GET", path="/api/auth/users/")

        async with httpx.AsyncClient() as http:
            response = await http.get(self.auth_url(portal) + "/api/auth/users/", headers={"X-Portal-Identity": forged})

        assert response.status_code == 403

    async def test_a_caller_cannot_smuggle_an_identity_through_the_gateway(self, portal):
        private, _ = generate_keypair()
        forged = IdentitySigner(private).sign(Identity(user_id=1, is_staff=True), method="GET", path="/api/auth/users/")

        async with portal.client() as http:
            response = await http.get("/api/auth/users/", headers={"X-Portal-Identity": forged})

        assert response.status_code == 401

    async def test_internal_routes_are_not_reachable_through_the_gateway(self, portal):
        async with portal.client() as http:
            response = await http.post("/internal/tokens/verify", json={"token": "x"})
            under_api = await http.post("/api/internal/tokens/verify", json={"token": "x"})

        assert response.status_code == 404
        assert under_api.status_code == 404

    async def test_internal_routes_need_the_shared_secret(self, portal):
        async with httpx.AsyncClient() as http:
            response = await http.post(self.auth_url(portal) + "/internal/tokens/verify", json={"token": "x" * 40})

        assert response.status_code == 403


class TestRequestsThatAreWrong:
    async def test_an_unknown_api_prefix_is_404(self, portal):
        async with portal.client(portal.admin_token) as http:
            response = await http.get("/api/nothing-here/")

        assert response.status_code == 404
        assert response.json() == {"detail": "Not found."}

    async def test_a_body_over_one_mebibyte_is_413(self, portal):
        async with portal.client(portal.admin_token) as http:
            response = await http.post(
                "/api/auth/users/",
                content=b'{"username": "' + b"x" * (1024 * 1024) + b'"}',
                headers={"Content-Type": "application/json"},
            )

        assert response.status_code == 413
        assert "detail" in response.json()

    async def test_malformed_json_is_a_parse_error(self, portal):
        async with portal.client(portal.admin_token) as http:
            response = await http.post(
                "/api/auth/users/", content=b'{"username": ', headers={"Content-Type": "application/json"}
            )

        assert response.status_code == 400
        assert response.json()["detail"].startswith("JSON parse error - ")

    async def test_another_media_type_is_415(self, portal):
        async with portal.client(portal.admin_token) as http:
            response = await http.post("/api/auth/users/", content=b"hello", headers={"Content-Type": "text/plain"})

        assert response.status_code == 415
        assert response.json() == {"detail": 'Unsupported media type "text/plain" in request.'}

    async def test_a_json_list_where_an_object_belongs(self, portal):
        async with portal.client(portal.admin_token) as http:
            response = await http.post("/api/auth/users/", json=[1, 2])

        assert response.status_code == 400
        assert response.json() == {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}

    async def test_a_method_the_route_lacks_is_405(self, portal):
        async with portal.client() as http:
            response = await http.put("/api/auth/token/", json={})

        assert response.status_code == 405
        assert response.json() == {"detail": 'Method "PUT" not allowed.'}


class TestHeaders:
    async def test_a_request_id_is_made_echoed_and_logged_by_the_service(self, portal):
        async with portal.client(portal.admin_token) as http:
            made = await http.get("/api/auth/me/")
            kept = await http.get("/api/auth/me/", headers={"X-Request-ID": "trace-abc-123"})

        assert len(made.headers["X-Request-ID"]) >= 16
        assert kept.headers["X-Request-ID"] == "trace-abc-123"
        auth_log = Path(portal.system.processes["auth"][0].log_path).read_text()
        gateway_log = Path(portal.system.processes["gateway"][0].log_path).read_text()
        lines = [json.loads(line) for line in auth_log.splitlines() if "trace-abc-123" in line]
        assert lines and all(line["request_id"] == "trace-abc-123" for line in lines)
        assert "trace-abc-123" in gateway_log

    async def test_no_token_ever_reaches_a_log_line(self, portal):
        token, _ = await user_token(portal)
        async with portal.client(token) as http:
            await http.get("/api/auth/me/")
            await http.post("/api/auth/logout/")

        for process in [p for group in portal.system.processes.values() for p in group]:
            assert token not in Path(process.log_path).read_text()

    async def test_forwarded_host_and_proto_shape_the_links(self, portal):
        async with portal.client(portal.admin_token) as http:
            response = await http.get(
                "/api/auth/users/",
                params={"page_size": 1},
                headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "portal.example.com"},
            )

        assert response.json()["next"].startswith("https://portal.example.com/api/auth/users/?")

    async def test_cors_answers_a_configured_origin_only(self, portal):
        async with portal.client() as http:
            allowed = await http.options(
                "/api/auth/token/",
                headers={"Origin": "http://frontend.test", "Access-Control-Request-Method": "POST"},
            )
            refused = await http.options(
                "/api/auth/token/",
                headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "POST"},
            )

        assert allowed.status_code == 200
        assert allowed.headers["Access-Control-Allow-Origin"] == "http://frontend.test"
        assert "Access-Control-Allow-Origin" not in refused.headers


class TestHealthAndDocs:
    async def test_health_and_readiness(self, portal):
        async with portal.client() as http:
            health = await http.get("/healthz")
            ready = await http.get("/readyz")

        assert health.status_code == 200
        assert ready.status_code == 200
        assert ready.json() == {"status": "ok"}

    async def test_the_merged_schema_lists_every_running_service(self, portal):
        async with portal.client() as http:
            schema = await http.get("/api/schema/")
            docs = await http.get("/api/docs/")

        assert schema.status_code == 200
        assert "/api/auth/token/" in schema.json()["paths"]
        assert docs.status_code == 200
        assert "/api/schema/" in docs.text


class TestAServiceThatIsDown:
    async def test_a_stopped_service_answers_503_and_comes_back(self, portal):
        token, _ = await user_token(portal)
        process = portal.system.processes["auth"][0]

        portal.system.stop_process(process)
        try:
            async with portal.client(token) as http:
                response = await http.get("/api/auth/users/")
        finally:
            await portal.system.restart_service("auth")

        assert response.status_code == 503
        assert "detail" in response.json()
        async with portal.client(token) as http:
            assert (await http.get("/api/auth/me/")).status_code == 200


class TestHostileInput:
    """Found by trying to break the system: each was a 500 or a misroute once."""

    @pytest.mark.parametrize(
        "path",
        ["/api/clients/%00/", "/api/clients/%01/", "/api/auth/users/%7f/", "/api/auth/me/%0a"],
    )
    async def test_control_characters_in_a_path_are_not_found(self, portal, path):
        async with portal.client(portal.admin_token) as http:
            response = await http.get(path)
            after = await http.get("/api/auth/me/")

        assert response.status_code == 404
        assert response.json() == {"detail": "Not found."}
        assert after.status_code == 200

    @pytest.mark.parametrize(
        "path",
        ["/api/workflows/%2e%2e/clients/", "/api/invoices/%2e%2e/credentials/", "/api/clients/%2e/",
         "/api/workflows/%2e%2e/%2e%2e/healthz"],
    )
    async def test_dot_segments_never_reach_another_route(self, portal, path):
        async with portal.client(portal.admin_token) as http:
            response = await http.get(path)

        assert response.status_code == 404
        assert response.json() == {"detail": "Not found."}

    async def test_deeply_nested_json_is_a_parse_error_and_breaks_nothing(self, portal):
        deep = b"[" * 100_000 + b"]" * 100_000

        async with portal.client() as http:
            answers = [
                await http.post("/api/auth/token/", content=deep, headers={"Content-Type": "application/json"})
                for _ in range(5)
            ]
            login = await http.post(
                "/api/auth/token/", json={"username": portal.admin_username, "password": portal.admin_password}
            )

        for answer in answers:
            assert answer.status_code == 400
            assert answer.json()["detail"].startswith("JSON parse error - ")
        assert login.status_code == 200

    async def test_only_plain_json_is_json(self, portal):
        async with portal.client() as http:
            response = await http.post(
                "/api/auth/token/", content=b'{"username": "a", "password": "b"}',
                headers={"Content-Type": "application/vnd.api+json"},
            )

        assert response.status_code == 415

    async def test_one_date_and_one_server_header(self, portal):
        async with portal.client(portal.admin_token) as http:
            response = await http.get("/api/auth/me/")

        assert len(response.headers.get_list("date")) == 1
        assert len(response.headers.get_list("server")) <= 1
