"""The channel layer of the event sockets: channels-redis's pub/sub layer, with a group
message decoded once per process and handed straight to the sockets that follow it.

``channels_redis.pubsub.RedisPubSubChannelLayer`` receives one Redis message per group
message and process, and puts its *bytes* into the queue of every member channel; each
consumer's own task then wakes, takes its copy and msgpack-decodes it. For one
``region.xixian`` event and 5,000 sockets in a process that is 5,000 decodes, 5,000
queue wake-ups and 5,000 task switches, one after the other on one core
(bench/bench_realtime.py, ``broadcast``: most of the process's CPU in a py-spy profile).

:class:`EventPubSubChannelLayer` keeps that layer whole (subscriptions, sharding,
reconnects, the wire format the sync publisher writes) and changes one step: a channel
may register a *sink* (:meth:`EventPubSubChannelLayer.set_sink`, the event consumer does),
and a group message is then decoded once and passed, as the same dict, to the sink of
each member, synchronously, in the layer's reader (the consumer starts its handler
eagerly, ``apps.realtime.eager``). Members without a sink, and messages to a single
channel (``send``: the head check's), take the layer's queues as before.

Sinks must treat the message as read-only (every member gets the same dict) and must
not raise: an error is logged and the next member still gets the message.

The subclass relies on the internals of channels-redis 4.x (``RedisPubSubLoopLayer``,
``RedisSingleShardConnection._receive_message``), the same versions the sync publisher
knows (``publisher.SUPPORTED_CHANNELS_REDIS``); ``tests/realtime/test_layers.py`` runs
it against a real Redis.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from channels_redis.pubsub import (
    RedisPubSubChannelLayer,
    RedisPubSubLoopLayer,
    RedisSingleShardConnection,
)
from channels_redis.utils import _wrap_close

logger = logging.getLogger(__name__)

Sink = Callable[[dict[str, Any]], None]


class _FanoutShard(RedisSingleShardConnection):
    """A shard connection that hands group messages to sinks, decoded once."""

    def _receive_message(self, message: dict[str, Any] | None) -> None:
        if message is None:
            return
        layer: _FanoutLoopLayer = self.channel_layer
        name = message["channel"]
        if isinstance(name, bytes):
            name = name.decode()
        members = layer.groups.get(name)
        if members is None or name in layer.channels:
            super()._receive_message(message)
            return
        data = message["data"]
        decoded: dict[str, Any] | None = None
        # A copy: a sink may leave the group while we go (its socket closing).
        for channel in tuple(members):
            sink = layer.sinks.get(channel)
            if sink is not None:
                if decoded is None:
                    decoded = layer.channel_layer.deserialize(data)
                try:
                    sink(decoded)
                except Exception:
                    logger.exception("channel %s failed to take a group message", channel)
            else:
                queue = layer.channels.get(channel)
                if queue is not None:
                    queue.put_nowait(data)


class _FanoutLoopLayer(RedisPubSubLoopLayer):
    """The per-event-loop layer, with :class:`_FanoutShard` connections and the sinks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sinks: dict[str, Sink] = {}
        self._shards = [_FanoutShard(shard.host, self) for shard in self._shards]


class EventPubSubChannelLayer(RedisPubSubChannelLayer):
    """``RedisPubSubChannelLayer`` whose group messages reach sinks decoded once per
    process (module docstring). Configured like its parent (``hosts``, ``prefix``...)."""

    def _get_layer(self) -> _FanoutLoopLayer:
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = _FanoutLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
        return layer  # type: ignore[no-any-return]

    def set_sink(self, channel: str, sink: Sink | None) -> None:
        """Hand group messages for ``channel`` (a channel of this process, from
        ``new_channel``) to ``sink`` instead of its queue; ``None`` undoes it. Call it
        on the event loop the channel lives on."""
        sinks = self._get_layer().sinks
        if sink is None:
            sinks.pop(channel, None)
        else:
            sinks[channel] = sink
