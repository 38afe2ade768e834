"""A real SMTP server for tests (aiosmtpd on 127.0.0.1): it keeps what it receives, can refuse
chosen recipients, and can be stopped and started again on the same port."""

from __future__ import annotations

import email
from email.message import EmailMessage as MimeMessage
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.controller import Controller

from tests.processes import free_port


class SmtpSink:
    """An aiosmtpd handler that keeps what it receives; it can refuse chosen recipients."""

    def __init__(self) -> None:
        self.messages: list[MimeMessage] = []
        self.refused: set[str] = set()

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook names)
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refused:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=default_policy)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


class SmtpServer:
    """A real SMTP server on a fixed local port that a test can stop and start again."""

    def __init__(self) -> None:
        self.sink = SmtpSink()
        self.port = free_port()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def messages(self) -> list[MimeMessage]:
        return self.sink.messages

    def to(self, address: str) -> list[MimeMessage]:
        """What has arrived for ``address``, oldest first."""
        return [m for m in self.messages if address in str(m["To"])]
