"""Publishing committed events to the channel layer, from sync code, after commit.

``events.emit`` hands every transaction's events to :func:`publish` once, after commit.
Which way they travel depends on the configured layer:

- ``channels_redis.pubsub.RedisPubSubChannelLayer`` (production, ``REDIS_URL`` set): a
  per-process *sync* redis-py client PUBLISHes every event of the commit in one pipeline,
  one round trip, on exactly the Redis channel and with exactly the serialisation the
  layer's own ``group_send`` uses, so consumers cannot tell the difference. A sync
  request must not pay ``async_to_sync(group_send)`` (an event-loop hop, plus the layer's
  per-loop connection set-up in a worker thread) per commit.
- any other layer (the in-memory one of the embedded default and the unit tests): one
  ``async_to_sync`` hop per commit running ``group_send`` for each event.

Publishing is best effort by design: the events are already committed, and a socket that
misses one (Redis blip, process restart) gets it from the database, either when the next
event on the stream reveals the gap or when it reconnects with its last sequence number.
So :func:`publish` logs failures and never raises into the committed request.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.signals import setting_changed

logger = logging.getLogger(__name__)

# The channel-layer message type; consumers handle it in ``realtime_event``.
MESSAGE_TYPE = "realtime.event"
# channels-redis versions whose pub/sub wire format :func:`pubsub_wire` reproduces.
SUPPORTED_CHANNELS_REDIS = ("4.",)


class LiveEvent(NamedTuple):
    """A committed event on its way to sockets: ``frame`` is the encoded event frame."""

    stream: str
    seq: int
    frame: str


def layer_message(event: LiveEvent) -> dict[str, Any]:
    """The channel-layer message of ``event`` (for ``group_send(event.stream, ...)``)."""
    return {"type": MESSAGE_TYPE, "stream": event.stream, "seq": event.seq, "frame": event.frame}


class PubSubWire(NamedTuple):
    """Where and how ``RedisPubSubChannelLayer.group_send`` publishes a group message."""

    channel_name: Callable[[str], str]  # group → Redis channel
    shard_index: Callable[[str], int]  # Redis channel → index into ``hosts``
    hosts: list[dict[str, Any]]


def pubsub_wire(config: dict[str, Any]) -> PubSubWire | None:
    """The one hook into channels-redis internals (``channels_redis/pubsub.py``,
    ``RedisPubSubLoopLayer._get_group_channel_name`` and ``_get_shard``), for the
    versions in ``SUPPORTED_CHANNELS_REDIS``; ``None`` for any other version, and the
    caller falls back to ``group_send``. ``tests/realtime/test_publisher.py`` proves a
    real layer subscriber receives what the sync publisher sends."""
    import channels_redis
    from channels_redis.utils import _consistent_hash, decode_hosts

    if not channels_redis.__version__.startswith(SUPPORTED_CHANNELS_REDIS):
        logger.warning(
            "channels-redis %s is not a version the sync publisher knows; using group_send",
            channels_redis.__version__,
        )
        return None
    prefix = config.get("prefix", "asgi")
    hosts = decode_hosts(config.get("hosts"))
    return PubSubWire(
        channel_name=lambda group: f"{prefix}__group__{group}",
        shard_index=lambda channel: _consistent_hash(channel, len(hosts)),
        hosts=hosts,
    )


class _LayerPublisher:
    """Any channel layer: one event-loop hop per commit, ``group_send`` per event."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer

    def publish(self, events: Sequence[LiveEvent]) -> None:
        async_to_sync(self.send_all)(events)

    async def send_all(self, events: Sequence[LiveEvent]) -> None:
        for event in events:
            await self.layer.group_send(event.stream, layer_message(event))


class _RedisPubSubPublisher:
    """Sync PUBLISH with redis-py: one pipeline (one round trip) per shard per commit."""

    def __init__(self, layer: Any, wire: PubSubWire, clients: list[Any]) -> None:
        self.serialize = layer.serialize
        self.wire = wire
        self.clients = clients

    def publish(self, events: Sequence[LiveEvent]) -> None:
        pipelines: dict[int, Any] = {}
        for event in events:
            channel = self.wire.channel_name(event.stream)
            shard = self.wire.shard_index(channel)
            pipe = pipelines.get(shard)
            if pipe is None:
                pipe = pipelines[shard] = self.clients[shard].pipeline(transaction=False)
            pipe.publish(channel, self.serialize(layer_message(event)))
        for pipe in pipelines.values():
            pipe.execute()


def _sync_client(host: dict[str, Any]) -> Any:
    """A sync redis-py client on its own blocking pool (``EVENTS_PUBLISH_MAX_CONNECTIONS``
    per process: request threads wait for a connection instead of failing)."""
    import redis

    options = {k: v for k, v in host.items() if k not in ("address", "max_connections")}
    timeout = float(getattr(settings, "EVENTS_PUBLISH_TIMEOUT_SECONDS", 1.0))
    options.setdefault("socket_connect_timeout", timeout)
    options.setdefault("socket_timeout", timeout)
    pool_options = {
        "max_connections": int(getattr(settings, "EVENTS_PUBLISH_MAX_CONNECTIONS", 20)),
        "timeout": timeout,
        **options,
    }
    if "address" in host:
        pool = redis.BlockingConnectionPool.from_url(host["address"], **pool_options)
    else:
        pool = redis.BlockingConnectionPool(**pool_options)
    return redis.Redis(connection_pool=pool)


def _build() -> _LayerPublisher | _RedisPubSubPublisher | None:
    layer = get_channel_layer()
    if layer is None:
        return None
    from channels_redis.pubsub import RedisPubSubChannelLayer

    if isinstance(layer, RedisPubSubChannelLayer):
        config = dict(settings.CHANNEL_LAYERS["default"].get("CONFIG") or {})
        wire = pubsub_wire(config)
        if wire is not None and not any("master_name" in host for host in wire.hosts):
            return _RedisPubSubPublisher(layer, wire, [_sync_client(h) for h in wire.hosts])
    return _LayerPublisher(layer)


_lock = threading.Lock()
_publisher: list[_LayerPublisher | _RedisPubSubPublisher | None] = []


def current_publisher() -> _LayerPublisher | _RedisPubSubPublisher | None:
    """The process's publisher for the configured layer (built once; redis-py pools are
    thread-safe and reset themselves after a fork)."""
    if not _publisher:
        with _lock:
            if not _publisher:
                _publisher.append(_build())
    return _publisher[0]


def reset(**kwargs: Any) -> None:
    """Forget the publisher (settings changed in a test; Channels resets its layers too)."""
    if kwargs.get("setting") not in (None, "CHANNEL_LAYERS"):
        return
    with _lock:
        _publisher.clear()


setting_changed.connect(reset, dispatch_uid="realtime.publisher.reset")


def publish(events: Sequence[LiveEvent]) -> None:
    """Send committed events to their groups. Never raises (see the module docstring)."""
    if not events:
        return
    try:
        publisher = current_publisher()
        if publisher is not None:
            publisher.publish(events)
    except Exception:
        logger.exception(
            "publishing %d committed events failed (clients catch up from the database)",
            len(events),
        )


async def apublish(events: Sequence[LiveEvent]) -> None:
    """:func:`publish` for async code (the intake's group-commit writer, after its COMMIT):
    the Redis PUBLISH runs in a thread (redis-py is synchronous), any other layer's
    ``group_send`` on the running loop (``async_to_sync`` cannot run inside one). Never
    raises."""
    if not events:
        return
    try:
        publisher = current_publisher()
        if isinstance(publisher, _RedisPubSubPublisher):
            await asyncio.to_thread(publisher.publish, events)
        elif publisher is not None:
            await publisher.send_all(events)
    except Exception:
        logger.exception(
            "publishing %d committed events failed (clients catch up from the database)",
            len(events),
        )
