"""EventPubSubChannelLayer: a group message is decoded once per process and handed to the
sinks of its members; everything else takes the queues of RedisPubSubChannelLayer.

Against a real Redis (pub/sub channels are server-wide: every test has its own prefix)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from apps.realtime import events, publisher
from apps.realtime.layers import EventPubSubChannelLayer
from apps.realtime.publisher import LiveEvent, layer_message
from tests.realtime.conftest import ask, connected, frames
from tests.realtime.test_publisher import next_non_probe

pytestmark = pytest.mark.services

LIVE = LiveEvent("region.fengdong", 1, '{"type":"event","stream":"region.fengdong","seq":1}')


@pytest.fixture
def sink_layer(settings: Any) -> EventPubSubChannelLayer:
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "apps.realtime.layers.EventPubSubChannelLayer",
            "CONFIG": {
                "hosts": [{"address": settings.TEST_REDIS_URL}],
                "prefix": f"xems-test-{uuid.uuid4().hex[:10]}",
            },
        }
    }
    layer = get_channel_layer()
    assert isinstance(layer, EventPubSubChannelLayer)
    return layer


@pytest.fixture
def decodes(sink_layer: EventPubSubChannelLayer, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every msgpack decode the layer does (its ``deserialize``), recorded."""
    calls: list[bytes] = []
    original = sink_layer.deserialize

    def counting(data: bytes) -> Any:
        calls.append(data)
        return original(data)

    monkeypatch.setattr(sink_layer, "deserialize", counting)
    return calls


async def wait_for(condition: Any, timeout: float = 5.0) -> None:
    """Until ``condition()`` holds; fails after ``timeout`` (a bound, not a measurement)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_group_message_is_decoded_once_and_reaches_every_sink(
    sink_layer: EventPubSubChannelLayer, decodes: list[bytes]
) -> None:
    # given: 50 channels of this process in one group, each with a sink
    received: dict[str, list[dict[str, Any]]] = {}
    for _ in range(50):
        channel = await sink_layer.new_channel()
        received[channel] = []
        sink_layer.set_sink(channel, received[channel].append)
        await sink_layer.group_add(LIVE.stream, channel)
    # when: one event is published as a committed transaction publishes it
    await sync_to_async(publisher.publish)([LIVE])
    await wait_for(lambda: all(received.values()))
    # then: one decode for 50 sockets, and all of them got that very message
    assert len(decodes) == 1
    messages = [message for got in received.values() for message in got]
    assert len(messages) == 50
    assert messages[0] == layer_message(LIVE)
    assert all(message is messages[0] for message in messages)
    await sink_layer.flush()


async def test_channels_without_a_sink_and_direct_sends_use_the_queues(
    sink_layer: EventPubSubChannelLayer,
) -> None:
    # given: a member with a sink and one without
    with_sink, plain = await sink_layer.new_channel(), await sink_layer.new_channel()
    sunk: list[dict[str, Any]] = []
    sink_layer.set_sink(with_sink, sunk.append)
    for channel in (with_sink, plain):
        await sink_layer.group_add(LIVE.stream, channel)
    # when: a group message, then a message to the channel with the sink itself
    await sync_to_async(publisher.publish)([LIVE])
    await sink_layer.send(with_sink, {"type": "realtime.head", "stream": LIVE.stream, "seq": 1})
    # then
    assert await next_non_probe(sink_layer, plain) == layer_message(LIVE)
    assert await next_non_probe(sink_layer, with_sink) == {
        "type": "realtime.head",
        "stream": LIVE.stream,
        "seq": 1,
    }
    await wait_for(lambda: bool(sunk))
    assert sunk == [layer_message(LIVE)]
    await sink_layer.flush()


async def test_a_failing_sink_does_not_keep_the_message_from_the_others(
    sink_layer: EventPubSubChannelLayer,
) -> None:
    # given: the first member's sink raises
    def broken(message: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    first, second = await sink_layer.new_channel(), await sink_layer.new_channel()
    got: list[dict[str, Any]] = []
    sink_layer.set_sink(first, broken)
    sink_layer.set_sink(second, got.append)
    for channel in (first, second):
        await sink_layer.group_add(LIVE.stream, channel)
    # when
    await sync_to_async(publisher.publish)([LIVE])
    # then
    await wait_for(lambda: bool(got))
    assert got == [layer_message(LIVE)]
    await sink_layer.flush()


@pytest.mark.django_db(transaction=True)
async def test_one_event_to_many_sockets_is_encoded_once_and_decoded_once(
    sink_layer: EventPubSubChannelLayer,
    decodes: list[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given: the frame encoder and the layer's msgpack encoder, counted
    encoded: list[str] = []
    packed: list[dict[str, Any]] = []
    frame_of = events.event_frame_from_text
    pack = sink_layer.serialize

    def encoding(*args: Any) -> str:
        encoded.append(args[0])
        return frame_of(*args)

    def packing(message: dict[str, Any]) -> bytes:
        packed.append(message)
        return pack(message)

    monkeypatch.setattr(events, "event_frame_from_text", encoding)
    monkeypatch.setattr(sink_layer, "serialize", packing)  # before the publisher is built
    # and 20 sockets of one user (a phone, tablets, screens) on the user's stream
    from tests.factories.accounts import CitizenFactory

    user = await sync_to_async(CitizenFactory)()
    stream = f"user.{user.pk}"
    sockets = [await connected(user) for _ in range(20)]
    for ws in sockets:
        assert (await ask(ws, type="subscribe", stream=stream))["type"] == "subscribed"

    # when: one event is committed
    @sync_to_async
    def commit() -> None:
        with transaction.atomic():
            events.emit([stream], "task.instructions", {"text": "积水"})

    await commit()
    # then: every socket gets the frame; it was encoded, packed and decoded once each
    received = [(await frames(ws, 1))[0] for ws in sockets]
    assert {frame["seq"] for frame in received} == {1}
    assert all(frame["data"] == {"text": "积水"} for frame in received)
    assert len(encoded) == 1
    assert len(packed) == 1
    assert len(decodes) == 1
    for ws in sockets:
        await ws.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_live_event_for_a_socket_busy_replaying_waits_its_turn(
    sink_layer: EventPubSubChannelLayer,
    decodes: list[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from apps.realtime import selectors
    from tests.factories.accounts import CitizenFactory

    # given: events 1 and 2 committed; the socket's replay will stop after reading them
    user = await sync_to_async(CitizenFactory)()
    stream = f"user.{user.pk}"
    for n in (1, 2):
        await sync_to_async(events.emit)([stream], "task.instructions", {"n": n})
    entered, release = threading.Event(), threading.Event()
    replay_since = selectors.replay_since

    def held_replay(name: str, since: int) -> Any:
        replay = replay_since(name, since)
        entered.set()
        release.wait(5)
        return replay

    monkeypatch.setattr(selectors, "replay_since", held_replay)
    ws = await connected(user)
    await ws.send_json_to({"type": "subscribe", "stream": stream, "since": 0})
    await sync_to_async(entered.wait)(5)
    # when: event 3 is committed and reaches the layer while the replay holds the socket
    await sync_to_async(events.emit)([stream], "task.instructions", {"n": 3})
    await wait_for(lambda: len(decodes) == 1)
    release.set()
    # then: the answer, the replay, then the live event; once each
    answer, *rest = await frames(ws, 4)
    assert answer == {"type": "subscribed", "stream": stream, "last_seq": 2, "replayed": 2}
    assert [frame["seq"] for frame in rest] == [1, 2, 3]
    assert await ws.receive_nothing(timeout=0.1)
    await ws.disconnect()
