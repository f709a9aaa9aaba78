"""The safety net of live delivery: every few seconds, one query per ASGI process compares
the heads of the streams its sockets follow with what reached them live.

Live events travel over Redis pub/sub, which is at-most-once: a publish can be lost (a
Redis restart, the publishing process dying between COMMIT and PUBLISH) or never happen
(the embedded default runs the Celery worker as its own process with its own in-memory
layer, so an event committed by a worker task reaches no socket live). A lost event is
repaired when the next event on its stream reveals the gap, but the *last* one would
wait for that next event. The watcher closes that hole:

1. consumers register the streams they follow (:meth:`HeadWatcher.watch`) and report
   every number that reached them live (:meth:`HeadWatcher.saw`);
2. every ``EVENTS_HEAD_CHECK_SECONDS`` (default 5; 0 turns it off) the watcher reads the
   committed heads of all watched streams in ONE query;
3. for a stream whose head is beyond what was seen live in this process, it sends each
   following consumer a ``realtime.head`` message through the channel layer (so the
   consumer handles it in turn with its other messages), and the consumer sends the
   missing events from the database.

In normal operation step 3 never happens and the cost is one primary-key query per
process per interval, whatever the number of sockets.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from django.conf import settings

from apps.realtime import selectors
from apps.realtime.threads import in_pool

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_SECONDS = 5.0
MESSAGE_TYPE = "realtime.head"  # consumers handle it in ``realtime_head``


class HeadWatcher:
    """One per event loop (per ASGI process); started by the first watch, stopped when
    nothing is watched any more."""

    def __init__(self, layer: Any, interval: float) -> None:
        self.layer = layer
        self.interval = interval
        self.followers: dict[str, set[str]] = {}  # stream → consumer channel names
        self.seen: dict[str, int] = {}  # stream → highest number that reached us live
        self.task: asyncio.Task[None] | None = None

    def watch(self, stream: str, channel: str, position: int) -> None:
        self.followers.setdefault(stream, set()).add(channel)
        self.saw(stream, position)
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._run())

    def unwatch(self, stream: str, channel: str) -> None:
        channels = self.followers.get(stream)
        if channels is None:
            return
        channels.discard(channel)
        if not channels:
            del self.followers[stream]
            self.seen.pop(stream, None)

    def saw(self, stream: str, seq: int) -> None:
        if seq > self.seen.get(stream, 0):
            self.seen[stream] = seq

    async def check(self) -> None:
        """One round of steps 2 and 3."""
        names = list(self.followers)
        if not names:
            return
        heads = await in_pool(selectors.stream_heads)(names)
        for stream, head in heads.items():
            if head <= self.seen.get(stream, 0):
                continue
            self.seen[stream] = head  # tell the followers once per missed head
            for channel in list(self.followers.get(stream, ())):
                await self.layer.send(
                    channel, {"type": MESSAGE_TYPE, "stream": stream, "seq": head}
                )

    async def _run(self) -> None:
        while self.followers:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception:
                logger.exception("stream head check failed; retrying next interval")


_watchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, HeadWatcher] = (
    weakref.WeakKeyDictionary()
)


def interval() -> float:
    return float(getattr(settings, "EVENTS_HEAD_CHECK_SECONDS", DEFAULT_INTERVAL_SECONDS))


def watcher(layer: Any) -> HeadWatcher | None:
    """The running loop's watcher (``None`` when the check is turned off)."""
    seconds = interval()
    if seconds <= 0:
        return None
    loop = asyncio.get_running_loop()
    found = _watchers.get(loop)
    if found is None or found.layer is not layer:
        found = _watchers[loop] = HeadWatcher(layer, seconds)
    return found
