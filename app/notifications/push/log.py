"""The `log` push backend, the default outside production: every delivery is
kept as a row (with status `sent`) and logged as one JSON line naming ids and
the kind; nothing leaves the machine, and the token is never written."""

from __future__ import annotations

import logging

from app.notifications.push.message import Outcome, PushMessage, PushResult

log = logging.getLogger("hulian.push")


class LogPushSender:
    name = "log"

    async def send(self, batch: list[PushMessage]) -> list[PushResult]:
        for message in batch:
            log.info(
                "push recorded",
                extra={
                    "push_backend": self.name,
                    "delivery_id": str(message.delivery_id),
                    "kind": message.kind,
                    "notification_id": message.data.get("notification_id"),
                    "call_id": message.data.get("call_id"),
                    "offer_id": message.data.get("offer_id"),
                    "platform": message.platform,
                    "urgent": message.urgent,
                    "ttl_s": message.ttl_seconds,
                },
            )
        return [PushResult(message.delivery_id, Outcome.sent) for message in batch]

    async def close(self) -> None:
        return None
