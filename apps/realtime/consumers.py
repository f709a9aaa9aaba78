"""WebSocket consumers: the event streams (``/ws/v1/events/``) and an authenticated echo.

The protocol is documented in ``docs/realtime.md``; in short, one socket per app,
multiplexing streams::

    → {"type": "subscribe", "stream": "region.fengdong", "since": 41}
    ← {"type": "subscribed", "stream": "region.fengdong", "last_seq": 43, "replayed": 2}
    ← {"type": "event", "stream": "region.fengdong", "seq": 42, ...}
    ← {"type": "event", "stream": "region.fengdong", "seq": 43, ...}
    ← ... live events

Replay without gap or duplicate (per subscribed stream):

1. authorise (fresh user row and scope, see ``access``);
2. join the stream's group FIRST, so every event committed from now on reaches us;
3. read the missed events (``seq > since``) from the database and send them. Channels
   dispatches one message at a time per consumer, so live events arriving meanwhile wait
   in this consumer's channel queue: that queue is the buffer;
4. remember the last number sent; a live event at or below it is a duplicate (it was in
   the replay) and is dropped;
5. a live event *above* ``last + 1`` means events were published out of commit order
   (two processes) or lost (a Redis blip): everything below a committed number is
   committed, so the gap is read from the database and sent first.

Too far behind (more than ``EVENTS_REPLAY_MAX``), purged by retention, or ahead of the
server: a ``resync`` frame tells the client to reload that stream's state via REST; live
events continue from the ``last_seq`` it names.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.http import HttpRequest
from django.utils import translation

from apps.realtime import access, eager, heads, publisher, selectors
from apps.realtime.auth import SUBPROTOCOL_PREFIX
from apps.realtime.errors import MESSAGES, CloseCode, RealtimeErrorCode
from apps.realtime.frames import encode, iso
from apps.realtime.streams import StreamKind, parse
from apps.realtime.threads import in_pool

logger = logging.getLogger(__name__)

# Application close codes (4000-4999 are free for applications, RFC 6455 section 7.4.2).
CLOSE_NOT_AUTHENTICATED = CloseCode.NOT_AUTHENTICATED
CLOSE_TOKEN_INVALID = CloseCode.TOKEN_INVALID

DEFAULT_MAX_STREAMS = 50


TOKEN_MAX_LENGTH = 64
REF_MAX_LENGTH = 64
E = RealtimeErrorCode


def _bearer_subprotocol(scope: dict[str, Any]) -> str | None:
    return next(
        (p for p in scope.get("subprotocols") or [] if p.startswith(SUBPROTOCOL_PREFIX)), None
    )


class PingConsumer(AsyncJsonWebsocketConsumer):
    """Authenticated echo: ``{"type": "ping", ...}`` → ``{"type": "pong", ...}``.

    Lets the app (and the deployment check) prove the socket path, auth and the
    ASGI server work end to end.
    """

    async def connect(self) -> None:
        # Accept first, then close with an application code: closing before the
        # handshake completes reaches a real client only as an HTTP 403, and the app
        # must tell "log in again" (4401/4403) from a network error.
        await self.accept(subprotocol=_bearer_subprotocol(self.scope))
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            error = self.scope.get("auth_error") or "not_authenticated"
            await self.send_json({"type": "error", "code": error})
            await self.close(
                code=CLOSE_TOKEN_INVALID if error == "token_invalid" else CLOSE_NOT_AUTHENTICATED
            )
            return
        await self.send_json({"type": "hello", "user_id": user.pk})

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong", "echo": content.get("data")})
        else:
            await self.send_json({"type": "error", "code": "unknown_message_type"})


class Refused(Exception):
    """A client message is refused with an ``error`` frame; the socket stays open."""

    def __init__(self, code: str, stream: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.stream = stream


class EventStreamConsumer(AsyncJsonWebsocketConsumer):
    """The event streams of one app: subscribe, replay, live events (module docstring).

    Anonymous sockets are accepted (a citizen following a report by its tracking token)
    and may subscribe only to ``report`` streams. A token that is present but invalid
    closes the socket at once (4403); a valid one closes it with 4401 when it expires.
    """

    user_id: int | None = None
    language: str = ""
    closing = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Channels' ``AsyncConsumer.__call__`` with a cheaper message loop.

        Channels' ``await_many_dispatch`` runs ``asyncio.wait`` over both sources and
        creates a new task for *every* message; in a broadcast to 5,000 sockets of one
        process that is 5,000 waits and 5,000 tasks per event (bench_realtime
        ``broadcast``). Here each source (the client, the channel layer) has one
        long-lived pump, and one lock keeps what Channels guarantees and the replay
        relies on: one handler at a time per consumer, each source in order.

        Group messages (the live events) skip even the pump where the layer allows it
        (``apps.realtime.layers``): the layer hands each one, decoded once for all the
        process's sockets, to :meth:`_offer`, which runs the handler at once under the
        same lock (``apps.realtime.eager``). The lock is FIFO, so live events keep their
        order among themselves and behind a replay that holds it.
        """
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.base_send = send
        self._lock = asyncio.Lock()
        loop = asyncio.get_running_loop()
        self._failed: asyncio.Future[None] = loop.create_future()
        self._offered: set[asyncio.Task[None]] = set()
        sources = [receive]
        set_sink = None
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
            sources.append(self.channel_receive)
            set_sink = getattr(self.channel_layer, "set_sink", None)
            if set_sink is not None:
                set_sink(self.channel_name, self._offer)

        async def pump(source: Any) -> None:
            while True:
                message = await source()
                async with self._lock:
                    await self.dispatch(message)

        pumps = [asyncio.ensure_future(pump(source)) for source in sources]
        try:
            done, _pending = await asyncio.wait(
                [*pumps, self._failed], return_when=asyncio.FIRST_EXCEPTION
            )
            for task in done:
                task.result()  # StopConsumer (a clean end) or the handler's error
        except StopConsumer:
            pass
        finally:
            if set_sink is not None:
                set_sink(self.channel_name, None)
            running = [*pumps, *self._offered]
            for task in running:
                task.cancel()
            for task in running:
                with contextlib.suppress(asyncio.CancelledError, StopConsumer):
                    await task

    def _offer(self, message: dict[str, Any]) -> None:
        """A group message from the layer's sink (read-only: every socket of the process
        gets the same dict). Handled now if the consumer is idle, else queued on its lock;
        a handler's error ends the consumer as it would in the pump."""
        if self._failed.done():
            return
        try:
            task = eager.start(self._handle_offered(message))
        except Exception as exc:
            self._failed.set_exception(exc)
            return
        if task is not None:
            self._offered.add(task)
            task.add_done_callback(self._offered_done)

    async def _handle_offered(self, message: dict[str, Any]) -> None:
        async with self._lock:
            if message.get("type") == publisher.MESSAGE_TYPE:
                await self.realtime_event(message)
            else:
                await self.dispatch(message)

    def _offered_done(self, task: asyncio.Task[None]) -> None:
        self._offered.discard(task)
        if task.cancelled() or self._failed.done():
            return
        error = task.exception()
        if error is not None:
            self._failed.set_exception(error)

    async def connect(self) -> None:
        self.streams: dict[str, int] = {}  # stream → last sequence number sent
        self.expiry: asyncio.Task[None] | None = None
        self.heads = heads.watcher(self.channel_layer)
        self.language = _language(self.scope)
        await self.accept(subprotocol=_bearer_subprotocol(self.scope))
        if self.scope.get("auth_error") == E.TOKEN_INVALID:
            await self._close_with(E.TOKEN_INVALID, CloseCode.TOKEN_INVALID)
            return
        user = self.scope.get("user")
        expires_at = self.scope.get("auth_expires_at")
        if user is not None and user.is_authenticated:
            self.user_id = user.pk
            if expires_at is not None:
                self.expiry = asyncio.ensure_future(self._close_when_expired(expires_at))
        await self.send_json(
            {
                "type": "hello",
                "user_id": self.user_id,
                "expires_at": (
                    iso(datetime.fromtimestamp(expires_at, tz=UTC))
                    if self.user_id is not None and expires_at is not None
                    else None
                ),
            }
        )

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' ``dispatch`` without its per-message ``aclose_old_connections()``.

        That call is a hop to the process's one thread-sensitive thread for *every* message
        of *every* socket: a broadcast to 5,000 sockets of a process queued 5,000 hops
        behind each other (bench/bench_realtime.py). This consumer never holds a database
        connection outside ``threads.in_pool``, which closes its own after each call.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def disconnect(self, code: int) -> None:
        self.closing = True
        if self.expiry is not None:
            self.expiry.cancel()
        for stream in list(getattr(self, "streams", {})):
            await self._leave(stream)

    # --- Client messages -------------------------------------------------------------------

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        if self.closing:
            return
        try:
            content = json.loads(text_data) if text_data is not None else None
        except ValueError:
            content = None
        if not isinstance(content, dict):
            await self._error(E.INVALID_MESSAGE, ref=None)
            return
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        ref = _ref(content.get("ref"))
        handler = {
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "ping": self._ping,
        }.get(content.get("type"))
        if handler is None:
            await self._error(E.UNKNOWN_MESSAGE_TYPE, ref=ref)
            return
        try:
            await handler(content, ref)
        except Refused as refused:
            await self._error(refused.code, ref=ref, stream=refused.stream)

    async def _ping(self, content: dict[str, Any], ref: Any) -> None:
        await self._send({"type": "pong", "ref": ref})

    async def _subscribe(self, content: dict[str, Any], ref: Any) -> None:
        kind, key, token, since = _subscribe_request(content)
        requested = content.get("stream") if key is not None else None
        if self.user_id is None and kind not in access.ANONYMOUS_KINDS:
            raise Refused(E.NOT_AUTHENTICATED, requested)
        granted = await self._authorize(kind, key, token)
        if self.closing:
            return
        if granted is None:
            raise Refused(E.OUT_OF_SCOPE, requested)
        stream = f"{kind}.{granted}"
        if stream not in self.streams and len(self.streams) >= _max_streams():
            raise Refused(E.TOO_MANY_STREAMS, stream)
        # 2. Join first: from here on, every committed event of the stream reaches us.
        await self.channel_layer.group_add(stream, self.channel_name)
        if since is None:
            head = await in_pool(selectors.stream_head)(stream)
            self._follow(stream, head)
            await self._send(
                {
                    "type": "subscribed",
                    "stream": stream,
                    "last_seq": head,
                    "replayed": 0,
                    "ref": ref,
                }
            )
            return
        # 3. Replay; live events wait in the channel queue meanwhile (the buffer).
        replay = await in_pool(selectors.replay_since)(stream, since)
        self._follow(stream, replay.last_seq)
        if replay.resync is not None:
            await self._resync(stream, replay.last_seq, replay.resync, ref=ref)
            return
        await self._send(
            {
                "type": "subscribed",
                "stream": stream,
                "last_seq": replay.last_seq,
                "replayed": len(replay.events),
                "ref": ref,
            }
        )
        for event in replay.events:
            await self.send(text_data=event.frame)

    async def _unsubscribe(self, content: dict[str, Any], ref: Any) -> None:
        stream = content.get("stream")
        try:
            parse(stream)
        except ValueError:
            raise Refused(E.INVALID_STREAM) from None
        if stream in self.streams:
            await self._leave(stream)
        await self._send({"type": "unsubscribed", "stream": stream, "ref": ref})

    # --- Live events -----------------------------------------------------------------------

    async def realtime_event(self, message: dict[str, Any]) -> None:
        """A committed event published to one of our groups (``publisher.layer_message``)."""
        stream, seq = message["stream"], int(message["seq"])
        last = self.streams.get(stream)
        if self.closing or last is None or seq <= last:
            return  # not (or no longer) subscribed, or already sent by the replay
        if seq > last + 1:
            # 5. Out of commit order or lost: the numbers below ``seq`` are committed.
            await self._repair_gap(stream, last, seq)
            if self.streams.get(stream) != last:
                return  # unsubscribed or re-subscribed meanwhile; that path took over
        # Channels' ``send`` does just this, two calls deeper (once per socket per event).
        await self.base_send({"type": "websocket.send", "text": message["frame"]})
        self.streams[stream] = seq
        if self.heads is not None:
            self.heads.saw(stream, seq)

    async def realtime_head(self, message: dict[str, Any]) -> None:
        """The process's head check found ``stream`` committed up to ``seq`` beyond what
        reached us live (``heads``): send the rest from the database."""
        stream, seq = message["stream"], int(message["seq"])
        last = self.streams.get(stream)
        if self.closing or last is None or seq <= last:
            return
        await self._repair_gap(stream, last, seq + 1)
        if self.streams.get(stream) == last:
            self.streams[stream] = seq

    async def _repair_gap(self, stream: str, last: int, seq: int) -> None:
        """Send ``last + 1 .. seq - 1`` from the database, or ``resync`` if they are too
        many (``EVENTS_REPLAY_MAX``) or some were purged."""
        needed = seq - last - 1
        if needed > selectors.replay_max():
            await self._resync(stream, seq - 1, selectors.ResyncReason.TOO_FAR_BEHIND, ref=None)
            return
        missing = await in_pool(selectors.events_between)(
            stream, after=last, before=seq, limit=needed
        )
        if self.streams.get(stream) != last:
            return
        if [event.seq for event in missing] != list(range(last + 1, seq)):
            await self._resync(stream, seq - 1, selectors.ResyncReason.PURGED, ref=None)
            return
        for event in missing:
            await self.send(text_data=event.frame)

    # --- Helpers ---------------------------------------------------------------------------

    def _follow(self, stream: str, position: int) -> None:
        self.streams[stream] = position
        if self.heads is not None:
            self.heads.watch(stream, self.channel_name, position)

    async def _leave(self, stream: str) -> None:
        self.streams.pop(stream, None)
        if self.heads is not None:
            self.heads.unwatch(stream, self.channel_name)
        await self.channel_layer.group_discard(stream, self.channel_name)

    async def _authorize(self, kind: StreamKind, key: str | None, token: str | None) -> str | None:
        user_id = self.user_id

        def check() -> tuple[bool, str | None]:
            user = access.fresh_user(user_id) if user_id is not None else None
            if user_id is not None and user is None:
                return False, None
            return True, access.allowed_key(kind, user=user, key=key, token=token)

        user_ok, granted = await in_pool(check)()
        if not user_ok:
            # Deactivated (or deleted) since the socket opened: it must not live on.
            await self._close_with(E.NOT_AUTHENTICATED, CloseCode.NOT_AUTHENTICATED)
        return granted

    async def _resync(self, stream: str, last_seq: int, reason: str, *, ref: Any) -> None:
        await self._send(
            {
                "type": "resync",
                "stream": stream,
                "last_seq": last_seq,
                "reason": str(reason),
                "ref": ref,
            }
        )

    async def _close_when_expired(self, expires_at: float) -> None:
        await asyncio.sleep(max(0.0, expires_at - time.time()))
        await self._close_with(E.TOKEN_EXPIRED, CloseCode.NOT_AUTHENTICATED)

    async def _close_with(self, code: str, close_code: int) -> None:
        if self.closing:
            return
        self.closing = True
        await self._error(code, ref=None, force=True)
        await self.close(code=int(close_code))

    async def _error(
        self, code: str, *, ref: Any, stream: str | None = None, force: bool = False
    ) -> None:
        with translation.override(self.language or settings.LANGUAGE_CODE):
            message = str(MESSAGES.get(code, code))
        frame: dict[str, Any] = {"type": "error", "code": str(code), "message": message}
        if stream is not None:
            frame["stream"] = stream
        if ref is not None:
            frame["ref"] = ref
        await self._send(frame, force=force)

    async def _send(self, content: dict[str, Any], *, force: bool = False) -> None:
        if self.closing and not force:
            return
        if content.get("ref", 0) is None:
            content = {k: v for k, v in content.items() if k != "ref"}
        await self.send(text_data=encode(content))


def _subscribe_request(
    content: dict[str, Any],
) -> tuple[StreamKind, str | None, str | None, int | None]:
    """``(kind, key, token, since)`` of a subscribe message, or :class:`Refused`."""
    since = content.get("since")
    if since is not None and (isinstance(since, bool) or not isinstance(since, int) or since < 0):
        raise Refused(E.INVALID_MESSAGE)
    token = content.get("token")
    if token is not None and (not isinstance(token, str) or not 0 < len(token) <= TOKEN_MAX_LENGTH):
        raise Refused(E.INVALID_MESSAGE)
    name = content.get("stream")
    if name == StreamKind.REPORT and token is not None:
        return StreamKind.REPORT, None, token, since  # a citizen's tracking token
    try:
        kind, key = parse(name)
    except ValueError:
        raise Refused(E.INVALID_STREAM) from None
    return kind, key, token, since


def _ref(value: Any) -> Any:
    """The client's correlation id, echoed on the answer (a short string or an integer)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, str) and len(value) <= REF_MAX_LENGTH):
        return value
    return None


def _max_streams() -> int:
    return int(getattr(settings, "EVENTS_MAX_STREAMS_PER_SOCKET", DEFAULT_MAX_STREAMS))


def _language(scope: dict[str, Any]) -> str:
    """The language of error messages, from the handshake's Accept-Language."""
    request = HttpRequest()
    for name, value in scope.get("headers") or []:
        if name.lower() == b"accept-language":
            request.META["HTTP_ACCEPT_LANGUAGE"] = value.decode("latin-1")
    return translation.get_language_from_request(request)
