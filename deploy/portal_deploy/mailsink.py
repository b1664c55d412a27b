"""A local SMTP server for `make run` that keeps every mail as an .eml file.

With no `PORTAL_SMTP_HOST` configured, the launcher starts this sink on
127.0.0.1 and a free port (aiosmtpd, in a thread of its own) and points the
support service at it. Each accepted mail is written, exactly as received,
to `$PORTAL_DATA_DIR/mail/<UTC timestamp>-<Message-ID>.eml`; open one with
any mail client. Nothing is relayed anywhere. The sink lives as long as the
launcher: mails the service owes while it is down wait in the service's
database and are sent when it is back.
"""

import re
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from pathlib import Path

from aiosmtpd.controller import Controller
from dotenv import dotenv_values

from portal_deploy.embedded import free_port

_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]+")


def smtp_host_configured(env: dict[str, str]) -> bool:
    """Whether `env` (or the `.env` file the services also read) names an SMTP host."""
    return bool(
        env.get("PORTAL_SMTP_HOST") or dotenv_values(".env").get("PORTAL_SMTP_HOST")
    )


class _EmlWriter:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's hook name)
        raw = envelope.original_content or b""
        message_id = (
            BytesHeaderParser().parsebytes(raw).get("Message-ID", "") or "no-message-id"
        )
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{stamp}-{_UNSAFE.sub('_', message_id.strip('<> '))[:150]}.eml"
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / name).write_bytes(raw)
        return "250 Message accepted for delivery"


class MailSink:
    """Start with `start()` (returns host and port), stop with `stop()`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._controller: Controller | None = None

    def start(self) -> tuple[str, int]:
        port = free_port()
        self._controller = Controller(
            _EmlWriter(self.folder), hostname="127.0.0.1", port=port
        )
        self._controller.start()
        return "127.0.0.1", port

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
