"""The `fcm` push backend: Firebase Cloud Messaging through firebase-admin's
async API (`messaging.send_each_async`; the blocking `send` never runs on
the event loop).

Each process initialises its own named firebase_admin app, from the
service-account file in GOOGLE_APPLICATION_CREDENTIALS (or, in tests, a
google-auth credential that needs no network), with FCM_PROJECT_ID as the
project. The SDK's own transport retries 500/503 four times at once and
ignores Retry-After; retrying is the push worker's job (with backoff, no
sooner than Retry-After, across processes and restarts), so the sender
turns the SDK's retries off and sends each message exactly once per
attempt.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
import uuid
import warnings
from datetime import UTC
from typing import Any

import firebase_admin
from firebase_admin import credentials, exceptions, messaging
from google.auth.credentials import Credentials as GoogleCredentials

from app.core.config import Settings
from app.notifications.push.message import Outcome, PushMessage, PushResult

log = logging.getLogger("hulian.push")

# Per request; well below the worker's lease on a claimed batch.
SEND_TIMEOUT_SECONDS = 20
FCM_BATCH_LIMIT = 500

# FirebaseError codes that may succeed later: 429 and 5xx, timeouts, and
# network errors without an answer.
_RETRYABLE = frozenset(
    {
        exceptions.RESOURCE_EXHAUSTED,
        exceptions.UNAVAILABLE,
        exceptions.INTERNAL,
        exceptions.DEADLINE_EXCEEDED,
        exceptions.UNKNOWN,
    }
)


class StaticCredential(credentials.Base):  # type: ignore[misc]
    """A firebase_admin credential around a google-auth one (tests use
    `google.oauth2.credentials.Credentials(token=...)`, which needs no
    network)."""

    def __init__(self, credential: GoogleCredentials) -> None:
        super().__init__()
        self._credential = credential

    def get_credential(self) -> GoogleCredentials:
        return self._credential


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else time.time()
    return max(0.0, when.timestamp() - current)


def build_message(push: PushMessage) -> messaging.Message:
    """The FCM message of one push: Android, APNs and web settings for an
    urgent alert, or for a silent data message."""
    ttl = max(0, push.ttl_seconds)
    apns_headers = {"apns-expiration": str(int(time.time()) + ttl)}
    if push.collapse_key:
        apns_headers["apns-collapse-id"] = push.collapse_key
    if push.urgent:
        notification = messaging.Notification(title=push.title, body=push.body)
        android = messaging.AndroidConfig(
            collapse_key=push.collapse_key,
            priority="high",
            ttl=ttl,
            notification=messaging.AndroidNotification(sound="default", tag=push.collapse_key),
        )
        apns_headers |= {"apns-priority": "10", "apns-push-type": "alert"}
        aps = messaging.Aps(
            sound="default",
            thread_id=push.collapse_key,
            custom_data={"interruption-level": "time-sensitive"},
        )
        web_urgency = "high"
    else:
        notification = None
        android = messaging.AndroidConfig(
            collapse_key=push.collapse_key, priority="normal", ttl=ttl
        )
        apns_headers |= {"apns-priority": "5", "apns-push-type": "background"}
        aps = messaging.Aps(content_available=True)
        web_urgency = "normal"
    with warnings.catch_warnings():
        # Newer SDKs prefer `fid`; devices register FCM registration tokens.
        warnings.simplefilter("ignore", DeprecationWarning)
        return messaging.Message(
            token=push.token,
            data=push.data,
            notification=notification,
            android=android,
            apns=messaging.APNSConfig(headers=apns_headers, payload=messaging.APNSPayload(aps=aps)),
            webpush=messaging.WebpushConfig(headers={"Urgency": web_urgency, "TTL": str(ttl)}),
        )


def result_of(delivery_id: uuid.UUID, response: Any) -> PushResult:
    """One `messaging.SendResponse` as a PushResult."""
    if response.success:
        return PushResult(delivery_id, Outcome.sent)
    error = response.exception
    if isinstance(error, messaging.UnregisteredError):
        return PushResult(delivery_id, Outcome.token_gone, "unregistered")
    if isinstance(error, messaging.SenderIdMismatchError):
        return PushResult(delivery_id, Outcome.token_gone, "sender_id_mismatch")
    if isinstance(error, messaging.QuotaExceededError):
        code = "quota_exceeded"
    elif isinstance(error, messaging.ThirdPartyAuthError):
        code = "third_party_auth_error"
    else:
        code = str(getattr(error, "code", exceptions.UNKNOWN) or exceptions.UNKNOWN).lower()
    if getattr(error, "code", None) in _RETRYABLE:
        http = getattr(error, "http_response", None)
        retry_after = parse_retry_after(http.headers.get("Retry-After")) if http else None
        return PushResult(delivery_id, Outcome.retry, code, retry_after)
    return PushResult(delivery_id, Outcome.failed, code)


class FcmPushSender:
    name = "fcm"

    def __init__(self, settings: Settings, credential: GoogleCredentials | None = None) -> None:
        if credential is not None:
            firebase_credential: credentials.Base = StaticCredential(credential)
        elif settings.google_application_credentials:
            firebase_credential = credentials.Certificate(settings.google_application_credentials)
        else:
            firebase_credential = credentials.ApplicationDefault()
        options: dict[str, Any] = {"httpTimeout": SEND_TIMEOUT_SECONDS}
        if settings.fcm_project_id:
            options["projectId"] = settings.fcm_project_id
        # A named app per sender: several (tests, workers) coexist in one process.
        self._app = firebase_admin.initialize_app(
            firebase_credential, options=options, name=f"hulian-push-{uuid.uuid4().hex}"
        )
        self._replaced: Any = None
        self._client: Any = None
        self._turn_off_sdk_retries()

    def _turn_off_sdk_retries(self) -> None:
        # The messaging service builds an async HTTP client whose transport
        # retries 500/503 itself; give it one that sends once. Private parts
        # of the SDK: if they change, keep the SDK's client and say so.
        service = messaging._get_messaging_service(self._app)
        try:
            from firebase_admin import _http_client
            from firebase_admin._retry import HttpxRetry

            replaced = service._async_client
            client = _http_client.HttpxAsyncClient(
                credential=service._credential,
                timeout=replaced.timeout,
                retry_config=HttpxRetry(max_retries=0),
            )
        except (ImportError, AttributeError, TypeError):
            log.warning("push: firebase-admin changed; its own HTTP retries stay on")
            return
        service._async_client = client
        self._replaced, self._client = replaced, client

    async def send(self, batch: list[PushMessage]) -> list[PushResult]:
        if not batch:
            return []
        assert len(batch) <= FCM_BATCH_LIMIT, "FCM takes at most 500 messages per send_each"
        try:
            messages = [build_message(push) for push in batch]
            response = await messaging.send_each_async(messages, app=self._app)
        except ValueError:
            # A message the SDK refuses to encode: find it, send the rest.
            if len(batch) == 1:
                log.exception("push: message refused by the SDK")
                return [PushResult(batch[0].delivery_id, Outcome.failed, "invalid_message")]
            results: list[PushResult] = []
            for push in batch:
                results.extend(await self.send([push]))
            return results
        except exceptions.FirebaseError as error:
            code = str(error.code or exceptions.UNKNOWN).lower()
            return [PushResult(push.delivery_id, Outcome.retry, code) for push in batch]
        return [
            result_of(push.delivery_id, answer)
            for push, answer in zip(batch, response.responses, strict=True)
        ]

    async def close(self) -> None:
        for client in (self._client, self._replaced):
            if client is not None:
                await client.aclose()
        # delete_app closes the SDK's services with asyncio.run: not on this loop.
        await asyncio.to_thread(firebase_admin.delete_app, self._app)
