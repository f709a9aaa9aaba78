"""Replay and live delivery on the event socket: no gap, no duplicate, resync when needed.

Negative checks use a *sentinel*: after the step that must deliver nothing, an event on
another subscribed stream is published; the channel queue is FIFO, so if the next frame
is the sentinel, nothing was delivered before it.

Every test runs twice: on the in-memory layer (live events through the consumer's pump)
and on the production layer over a real Redis (``apps.realtime.layers``: live events
handed to the consumer by the layer's sink, run eagerly under its lock).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async

from apps.realtime import events, publisher
from apps.realtime.models import Event
from apps.realtime.publisher import LiveEvent, current_publisher
from tests.factories.accounts import CitizenFactory
from tests.realtime.conftest import ask, connected, frames

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(
    autouse=True,
    params=["in-memory", pytest.param("redis-sinks", marks=pytest.mark.services)],
)
def channel_layer_kind(request: Any, settings: Any, _fresh_channel_layer: None) -> str:
    """The layer the sockets run on (see the module docstring)."""
    if request.param == "redis-sinks":
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "apps.realtime.layers.EventPubSubChannelLayer",
                "CONFIG": {
                    "hosts": [{"address": settings.TEST_REDIS_URL}],
                    "prefix": f"xems-test-{uuid.uuid4().hex[:10]}",
                },
            }
        }
    return str(request.param)


@pytest.fixture
def user(transactional_db: None) -> Any:
    return CitizenFactory()


@pytest.fixture
def mine(user: Any) -> str:
    return f"user.{user.pk}"


@database_sync_to_async
def emit(stream: str, n: int = 1, kind: str = "task.instructions") -> list[Event]:
    """``n`` committed events on ``stream``, one transaction each (published after each)."""
    return [events.emit([stream], kind, {"n": i})[0] for i in range(n)]


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[LiveEvent]]:
    """Commits proceed but publishing is held back (a slow or failed publisher); returns
    a function giving what was held."""
    kept: list[LiveEvent] = []
    monkeypatch.setattr(publisher, "publish", lambda live: kept.extend(live))
    return lambda: list(kept)


async def send_live(live: list[LiveEvent]) -> None:
    """Publish as the real publisher does (from a sync thread, after commit)."""
    await database_sync_to_async(lambda: current_publisher().publish(live))()


def seqs_of(received: list[dict[str, Any]]) -> list[int]:
    return [frame["seq"] for frame in received]


async def test_without_since_the_subscription_is_live_only_from_the_current_head(
    user, mine
) -> None:
    # given: two events before the socket existed
    await emit(mine, 2)
    ws = await connected(user)
    # when
    answer = await ask(ws, type="subscribe", stream=mine)
    await emit(mine)
    (live,) = await frames(ws, 1)
    # then
    assert answer == {"type": "subscribed", "stream": mine, "last_seq": 2, "replayed": 0}
    assert live["seq"] == 3
    await ws.disconnect()


async def test_a_reconnect_with_since_gets_exactly_what_it_missed_then_live(user, mine) -> None:
    # given: the client saw 1..2, then was away while 3..5 were written
    first = await emit(mine, 5)
    ws = await connected(user)
    # when
    answer = await ask(ws, type="subscribe", stream=mine, since=2)
    replayed = await frames(ws, 3)
    await emit(mine)
    (live,) = await frames(ws, 1)
    # then
    assert answer == {"type": "subscribed", "stream": mine, "last_seq": 5, "replayed": 3}
    assert seqs_of(replayed) == [3, 4, 5]
    assert [f["data"] for f in replayed] == [e.payload for e in first[2:]]
    assert live["seq"] == 6
    await ws.disconnect()


async def test_replayed_and_live_frames_of_one_event_are_the_same(user, mine, published) -> None:
    (event,) = await emit(mine)
    ws = await connected(user)
    await ask(ws, type="subscribe", stream=mine, since=0)
    (replayed,) = await frames(ws, 1)
    assert replayed == json.loads(published[0][0].frame)
    assert replayed["kind"] == event.kind
    await ws.disconnect()


async def test_since_equal_to_the_head_replays_nothing(user, mine) -> None:
    await emit(mine, 2)
    ws = await connected(user)
    answer = await ask(ws, type="subscribe", stream=mine, since=2)
    assert answer == {"type": "subscribed", "stream": mine, "last_seq": 2, "replayed": 0}
    await ws.disconnect()


async def test_a_number_the_server_never_handed_out_means_resync(user, mine) -> None:
    await emit(mine, 2)
    ws = await connected(user)
    answer = await ask(ws, type="subscribe", stream=mine, since=9)
    assert answer == {"type": "resync", "stream": mine, "last_seq": 2, "reason": "ahead"}
    await emit(mine)  # live events continue after the named last_seq
    assert seqs_of(await frames(ws, 1)) == [3]
    await ws.disconnect()


async def test_too_far_behind_means_resync_then_live(user, mine, settings) -> None:
    settings.EVENTS_REPLAY_MAX = 3
    await emit(mine, 5)
    ws = await connected(user)
    answer = await ask(ws, type="subscribe", stream=mine, since=1)
    await emit(mine)
    (live,) = await frames(ws, 1)
    assert answer == {"type": "resync", "stream": mine, "last_seq": 5, "reason": "too_far_behind"}
    assert live["seq"] == 6
    await ws.disconnect()


async def test_events_purged_by_retention_mean_resync(user, mine) -> None:
    await emit(mine, 4)
    await database_sync_to_async(Event.objects.filter(stream=mine, seq__lte=2).delete)()
    ws = await connected(user)
    gone = await ask(ws, type="subscribe", stream=mine, since=1)
    kept = await ask(ws, type="subscribe", stream=mine, since=2)  # what is left is enough
    assert gone == {"type": "resync", "stream": mine, "last_seq": 4, "reason": "purged"}
    assert kept["type"] == "subscribed"
    assert seqs_of(await frames(ws, 2)) == [3, 4]
    await ws.disconnect()


async def test_a_live_event_already_replayed_is_not_sent_twice(user, mine, held) -> None:
    # given: event 1 committed but its publish delayed until after a replay sent it
    await emit(mine)
    ws = await connected(user)
    await ask(ws, type="subscribe", stream=mine, since=0)
    assert seqs_of(await frames(ws, 1)) == [1]
    # when the late publish arrives, followed by event 2
    await send_live(held())
    await emit(mine)
    await send_live(held()[1:])
    # then
    assert seqs_of(await frames(ws, 1)) == [2]
    assert await ws.receive_nothing(timeout=0.1)
    await ws.disconnect()


async def test_live_events_published_out_of_commit_order_arrive_in_order_once(
    user, mine, held
) -> None:
    # given: a live subscriber; events 1 and 2 commit, their publishes race
    ws = await connected(user)
    await ask(ws, type="subscribe", stream=mine)
    await emit(mine, 2)
    one, two = held()
    # when: 2's publish overtakes 1's (two processes)
    await send_live([two])
    await send_live([one])
    await emit(mine)
    await send_live(held()[2:])
    # then: 1 is read from the database when 2 reveals the gap; the late 1 is dropped
    assert seqs_of(await frames(ws, 3)) == [1, 2, 3]
    assert await ws.receive_nothing(timeout=0.1)
    await ws.disconnect()


async def test_a_lost_publish_is_repaired_by_the_next_event(user, mine, held) -> None:
    ws = await connected(user)
    await ask(ws, type="subscribe", stream=mine)
    await emit(mine, 2)
    await send_live(held()[1:])  # the publish of event 1 never arrives
    assert seqs_of(await frames(ws, 2)) == [1, 2]
    await ws.disconnect()


async def test_a_gap_too_large_to_repair_means_resync(user, mine, held, settings) -> None:
    settings.EVENTS_REPLAY_MAX = 2
    ws = await connected(user)
    await ask(ws, type="subscribe", stream=mine)
    await emit(mine, 4)
    await send_live(held()[3:])  # only event 4 arrives
    resync, live = await frames(ws, 2)
    assert resync == {"type": "resync", "stream": mine, "last_seq": 3, "reason": "too_far_behind"}
    assert live["seq"] == 4
    await ws.disconnect()


async def test_after_unsubscribing_nothing_more_arrives(user, mine) -> None:
    sentinel = "report.1"
    ws = await connected(user)
    await ask(ws, type="subscribe", stream=mine)
    await subscribe_as_reporter(ws, user)
    answer = await ask(ws, type="unsubscribe", stream=mine, ref="u")
    await emit(mine)
    await emit(sentinel)
    (frame,) = await frames(ws, 1)
    assert answer == {"type": "unsubscribed", "stream": mine, "ref": "u"}
    assert frame["stream"] == sentinel
    await ws.disconnect()


async def test_each_subscribed_stream_is_numbered_on_its_own(user, mine) -> None:
    ws = await connected(user)
    await ask(ws, type="subscribe", stream=mine)
    await subscribe_as_reporter(ws, user)
    await database_sync_to_async(events.emit)([mine, "report.1"], "report.rated", {"rating": 5})
    received = sorted((f["stream"], f["seq"]) for f in await frames(ws, 2))
    assert received == [("report.1", 1), (mine, 1)]
    await ws.disconnect()


# --- Helpers ---------------------------------------------------------------------------------


async def subscribe_as_reporter(ws: Any, user: Any) -> None:
    """Subscribe ``ws`` to ``report.1``, a report of ``user`` (a second stream)."""
    from tests.factories.incidents import ReportFactory

    @database_sync_to_async
    def report() -> Any:
        return ReportFactory(pk=1, reporter=user)

    await report()
    answer = await ask(ws, type="subscribe", stream="report.1")
    assert answer["type"] == "subscribed", answer


# --- The head check (apps.realtime.heads) ----------------------------------------------------


async def test_a_lost_last_event_is_repaired_by_the_head_check(user, mine, held, settings) -> None:
    # given: the process's head check every 50 ms (the socket's watcher starts with it)
    settings.EVENTS_HEAD_CHECK_SECONDS = 0.05
    ws = await connected(user)
    await ask(ws, type="subscribe", stream=mine)
    # when: an event commits and its publish is lost, and nothing follows it
    await emit(mine)
    # then: the check finds the head beyond what arrived live and the socket gets it
    (frame,) = await frames(ws, 1)
    assert frame["seq"] == 1
    await ws.disconnect()


class RecordingLayer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        self.sent.append((channel, message))


async def test_the_head_check_tells_only_followers_of_streams_that_fell_behind(user, mine) -> None:
    from apps.realtime.heads import HeadWatcher

    # given: two watched streams; 2 of 2 events reached us live on one, 1 of 3 on the other
    await emit(mine, 2)
    await emit("report.1", 3)
    layer = RecordingLayer()
    watcher = HeadWatcher(layer, interval=3600)
    watcher.watch(mine, "chan-a", 0)
    watcher.watch("report.1", "chan-b", 0)
    watcher.watch("report.1", "chan-c", 0)
    watcher.saw(mine, 2)
    watcher.saw("report.1", 1)
    # when
    await watcher.check()
    await watcher.check()  # a second round tells nobody again
    # then
    assert sorted(layer.sent, key=lambda sent: sent[0]) == [
        ("chan-b", {"type": "realtime.head", "stream": "report.1", "seq": 3}),
        ("chan-c", {"type": "realtime.head", "stream": "report.1", "seq": 3}),
    ]
    watcher.unwatch(mine, "chan-a")
    watcher.unwatch("report.1", "chan-b")
    watcher.unwatch("report.1", "chan-c")
    assert watcher.followers == {}
    assert watcher.task is not None
    watcher.task.cancel()


async def test_live_events_do_not_queue_for_the_sync_thread(
    user, mine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Channels' dispatch hops to the one thread-sensitive thread per message; ours does
    not (a broadcast would queue one hop per socket)."""
    import channels.consumer

    hops: list[int] = []

    async def counted() -> None:
        hops.append(1)

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counted)
    ws = await connected(user)
    await ask(ws, type="subscribe", stream=mine)
    await emit(mine, 3)
    assert seqs_of(await frames(ws, 3)) == [1, 2, 3]
    assert hops == []
    await ws.disconnect()
