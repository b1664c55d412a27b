"""Bad configuration stops start-up with one line naming the variable."""

import os
import subprocess
import sys

import pytest


def start(module_code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("PORTAL_")}
    return subprocess.run(
        [sys.executable, "-c", module_code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )


@pytest.mark.parametrize(
    ("code", "env", "variable"),
    [
        ("from auth.config import get_settings; get_settings()", {}, "PORTAL_AUTH_DATABASE_URL"),
        ("from gateway.config import get_settings; get_settings()", {"PORTAL_IDENTITY_PRIVATE_KEY": " "}, "PORTAL_IDENTITY_PRIVATE_KEY"),
        (
            "from auth.config import get_settings; get_settings()",
            {"PORTAL_AUTH_DATABASE_URL": "x", "PORTAL_LOGIN_FAILURES_PER_USERNAME": "many"},
            "PORTAL_LOGIN_FAILURES_PER_USERNAME",
        ),
        (
            "from auth.config import get_settings; get_settings()",
            {"PORTAL_AUTH_DATABASE_URL": "x", "PORTAL_IDENTITY_PUBLIC_KEY": "not-a-key"},
            "PORTAL_IDENTITY_PUBLIC_KEY",
        ),
        (
            "import auth.main",
            {"PORTAL_AUTH_DATABASE_URL": "postgresql+asyncpg://u@127.0.0.1:1/x"},
            "PORTAL_IDENTITY_PUBLIC_KEY",
        ),
    ],
)
def test_a_missing_or_malformed_variable_is_named_in_one_line(code, env, variable):
    result = start(code, **env)

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"configuration error: {variable}: ")


def test_the_launcher_refuses_a_bad_gateway_port():
    result = start("import asyncio; from portal_deploy.launcher import main; raise SystemExit(asyncio.run(main()))",
                   PORTAL_GATEWAY_PORT="eighty")

    assert result.returncode == 2
    assert "PORTAL_GATEWAY_PORT" in result.stderr
