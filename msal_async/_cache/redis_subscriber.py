"""One subscriber connection to one Redis primary, for client-side caching and woken waiters.

It runs ``CLIENT TRACKING ON REDIRECT <its own id> BCAST PREFIX <prefix>`` (so Redis sends it an
invalidation for every change of a key under the prefix, by any client) and subscribes to
``__redis__:invalidate`` and the unlock channel. It speaks RESP2 whatever the client uses:
redis-py's asyncio client drops RESP3 invalidation pushes. When idle it pings every
:data:`PING_EVERY` seconds; a PING unanswered within the timeout, or any error, drops the
connection (the owner is told) and it reconnects, at once after a working session, then backing
off up to ``retry_after``. Layer 2: redis-py is used through the connections it is given.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import anyio

from msal_async import _log

__all__ = [
    "INVALIDATE",
    "LEASE",
    "PING_EVERY",
    "Owner",
    "Subscriber",
    "subscriber_factory",
]

logger = logging.getLogger(_log.PERSISTENCE)

#: Seconds an idle subscriber waits before it pings Redis.
PING_EVERY = 0.5
#: Seconds since a subscriber last heard from Redis after which its validations do not count.
LEASE = 1.5
#: The channel Redis publishes invalidations on (RESP2 redirect).
INVALIDATE = b"__redis__:invalidate"
#: Overrides for the subscriber's own connection: RESP2 (pub/sub invalidations), raw bytes, and
#: no health check PING (in pub/sub mode its answer would be read as a message).
_SUBSCRIBER_OPTIONS = {"protocol": 2, "decode_responses": False, "health_check_interval": 0}


class Owner(Protocol):
    """What a subscriber reports to (the Tracking of one store)."""

    prefix: str
    channel: str
    timeout: float
    retry_after: float

    def message(self, node: Subscriber, channel: bytes, data: Any) -> None:
        """A pub/sub message arrived."""

    def lost(self, node: Subscriber) -> None:
        """The subscriber's connection was lost."""

    def subscribed(self) -> None:
        """A subscriber is ready."""

    def refused(self, exc: BaseException) -> None:
        """Redis refused CLIENT TRACKING."""


class Subscriber:
    """The subscriber connection to one Redis primary, reconnected until closed.

    Args:
        owner: Where messages and state changes go.
        name: The primary's name (``host:port``), for logs.
        make: Makes a new (unconnected) redis-py connection to it.
        target: What to send a PUBLISH to for this primary (a ClusterNode), or None.
    """

    def __init__(self, owner: Owner, name: str, make: Callable[[], Any], target: Any) -> None:
        self.owner = owner
        self.name = name
        self.target = target  # what PUBLISH is sent to (a ClusterNode, or None)
        self._make = make
        self.subscribed = False
        self.tracking = False
        self.last_heard = 0.0
        self.barriers: dict[bytes, anyio.Event] = {}
        self.task: asyncio.Task[None] | None = None
        self.closed = False
        self._denied = False

    def live(self, now: float) -> bool:
        """True when subscribed and heard from Redis within :data:`LEASE` seconds of ``now``."""
        return self.subscribed and now - self.last_heard < LEASE

    def start(self) -> None:
        """Run the subscriber as a task of the running asyncio loop."""
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        failures = 0
        while not self.closed:
            connection = None
            try:
                connection = self._make()
                await self._session(connection)
            except Exception as exc:  # noqa: BLE001 (any failure: reconnect)
                self._log_failure(exc)
                failures = 0 if self.subscribed else failures + 1
            finally:
                if self.subscribed:
                    self.subscribed = False
                    self.owner.lost(self)
                if connection is not None:
                    with anyio.CancelScope(shield=True), anyio.move_on_after(self.owner.timeout):
                        await connection.disconnect()
            if failures:
                await asyncio.sleep(min(self.owner.retry_after, 0.05 * 2 ** (failures - 1)))

    def _log_failure(self, exc: Exception) -> None:
        from redis.exceptions import ResponseError

        if isinstance(exc, ResponseError) and not self._denied:  # an ACL: it will not pass
            self._denied = True
            logger.warning(
                "Redis refused the token cache's subscriber on %s (%s); cache hits ask Redis "
                "and fleet lock waiters poll (grant +subscribe and the channels, see the "
                "deployment guide)",
                self.name,
                exc,
            )
            return
        logger.log(
            logging.WARNING if self.subscribed else logging.DEBUG,
            "Redis invalidation subscriber to %s lost (%s: %s); cache hits ask Redis until it "
            "is back",
            self.name,
            type(exc).__name__,
            exc,
        )

    async def _session(self, connection: Any) -> None:
        owner = self.owner
        with anyio.fail_after(owner.timeout):
            await connection.connect()
            await connection.send_command("CLIENT", "ID")
            client_id = await connection.read_response()
            channels: list[str | bytes] = [owner.channel]
            tracking = await self._track(connection, client_id)
            if tracking:
                channels.insert(0, INVALIDATE)
            await connection.send_command("SUBSCRIBE", *channels)
            for _ in channels:
                await connection.read_response()
        self.tracking, self.last_heard, self.subscribed = tracking, time.monotonic(), True
        self.owner.subscribed()
        pinged = 0.0
        while True:
            message = await connection.read_response(timeout=PING_EVERY)
            now = time.monotonic()
            if message is None:
                if pinged and now - pinged > owner.timeout:
                    msg = f"no answer to PING within {owner.timeout} s"
                    raise TimeoutError(msg)
                if not pinged:
                    await connection.send_command("PING")
                    pinged = now
                continue
            self.last_heard, pinged = now, 0.0
            if message[0] == b"message":
                owner.message(self, message[1], message[2])

    async def _track(self, connection: Any, client_id: int) -> bool:
        from redis.exceptions import ResponseError

        prefix = self.owner.prefix
        await connection.send_command(
            "CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST", "PREFIX", prefix
        )
        try:
            await connection.read_response()
        except ResponseError as exc:  # an ACL without +client|tracking, or an old server
            self.owner.refused(exc)
            return False
        return True

    def stop(self) -> None:
        """Stop reconnecting and cancel the task."""
        self.closed = True
        if self.task is not None:
            self.task.cancel()


def subscriber_factory(connection_class: Any, options: dict[str, Any]) -> Callable[[], Any]:
    """Make subscriber connections like the client's own, but RESP2 and without extras."""
    options = {**options, **_SUBSCRIBER_OPTIONS}
    if "maint_notifications_config" in options:  # redis-py >= 7: RESP3 only
        options["maint_notifications_config"] = None
    return lambda: connection_class(**options)
