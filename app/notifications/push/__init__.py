"""Push notifications: the sender interface, its backends (`log`, `fcm`) and
the worker that sends pending deliveries (`worker.PushWorker`)."""

from __future__ import annotations

from app.core.config import PushBackend, Settings
from app.notifications.push.log import LogPushSender
from app.notifications.push.message import Outcome, PushMessage, PushResult, PushSender

__all__ = [
    "LogPushSender",
    "Outcome",
    "PushMessage",
    "PushResult",
    "PushSender",
    "make_push_sender",
]


def make_push_sender(settings: Settings) -> PushSender:
    """The sender PUSH_BACKEND names (`log` unless production)."""
    backend = settings.effective_push_backend
    if backend is PushBackend.log:
        return LogPushSender()
    if backend is PushBackend.fcm:
        # Imported here: firebase-admin is heavy, and only this backend needs it.
        from app.notifications.push.fcm import FcmPushSender

        return FcmPushSender(settings)
    raise ValueError(f"unknown push backend {backend!r}")  # pragma: no cover
