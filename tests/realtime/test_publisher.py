"""The sync publisher speaks the pub/sub layer's wire format; failures never raise."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import pytest
import redis
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from apps.realtime import events, publisher
from apps.realtime.publisher import LiveEvent, current_publisher, layer_message
from tests.support.servers import free_port

LIVE = LiveEvent(
    "incident.5", 3, '{"type":"event","stream":"incident.5","seq":3,"data":{"标题":"积水"}}'
)


def pubsub_settings(settings: Any, address: str) -> str:
    """Point the project at a RedisPubSubChannelLayer with a prefix of its own (pub/sub
    channels are server-wide: parallel test workers must not hear each other)."""
    prefix = f"xems-test-{uuid.uuid4().hex[:10]}"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": address}], "prefix": prefix},
        }
    }
    return prefix


async def joined(layer: Any, group: str) -> str:
    """A channel of ``layer`` in ``group``, once the Redis subscription is live (probes
    through the layer's own group_send until one comes back, with a deadline)."""
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        await layer.group_send(group, {"type": "probe"})
        try:
            while (await asyncio.wait_for(layer.receive(channel), 0.2))["type"] == "probe":
                return channel
        except TimeoutError:
            continue
    raise AssertionError("the layer never saw its own subscription")


async def next_non_probe(layer: Any, channel: str) -> dict[str, Any]:
    while True:
        message = await asyncio.wait_for(layer.receive(channel), 5)
        if message["type"] != "probe":
            return message


@pytest.mark.services
async def test_a_real_pubsub_layer_subscriber_receives_what_the_sync_publisher_sends(
    settings: Any,
) -> None:
    # given: a consumer-side subscription through the real RedisPubSubChannelLayer
    pubsub_settings(settings, settings.TEST_REDIS_URL)
    layer = get_channel_layer()
    channel = await joined(layer, LIVE.stream)
    # when: sync code publishes (from a worker thread, as after a request's commit)
    await sync_to_async(publisher.publish)([LIVE])
    # then
    assert type(current_publisher()).__name__ == "_RedisPubSubPublisher"
    assert await next_non_probe(layer, channel) == layer_message(LIVE)
    await layer.flush()


@pytest.mark.services
async def test_async_code_publishes_to_the_same_subscribers(settings: Any) -> None:
    pubsub_settings(settings, settings.TEST_REDIS_URL)
    layer = get_channel_layer()
    channel = await joined(layer, LIVE.stream)
    await publisher.apublish([LIVE])
    assert await next_non_probe(layer, channel) == layer_message(LIVE)
    await layer.flush()


@pytest.mark.services
def test_the_sync_publisher_writes_the_very_bytes_group_send_writes(settings: Any) -> None:
    # given: a raw Redis subscriber on the group's pub/sub channel
    prefix = pubsub_settings(settings, settings.TEST_REDIS_URL)
    raw = redis.Redis.from_url(settings.TEST_REDIS_URL)
    listener = raw.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(f"{prefix}__group__{LIVE.stream}")
    assert listener.get_message(timeout=5) is None  # consumes the subscribe confirmation
    # when: the same message goes out once through the layer and once through ours
    async_to_sync(get_channel_layer().group_send)(LIVE.stream, layer_message(LIVE))
    publisher.publish([LIVE])
    via_layer = listener.get_message(timeout=5)
    via_sync = listener.get_message(timeout=5)
    listener.close()
    raw.close()
    # then
    assert via_layer is not None
    assert via_sync is not None
    assert via_sync["channel"] == via_layer["channel"]
    assert via_sync["data"] == via_layer["data"]


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_one_commit_is_one_pipeline_round_trip(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pubsub_settings(settings, settings.TEST_REDIS_URL)
    executed: list[int] = []
    original = redis.client.Pipeline.execute

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        executed.append(len(self.command_stack))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", counting)
    # when: three emits (five events) in one transaction
    with transaction.atomic():
        events.emit(["incident.1", "region.fengdong", "region.xixian"], "incident.accepted", {})
        events.emit(["incident.1"], "incident.note", {})
        events.emit(["user.2"], "task.dispatched", {})
    # then
    assert executed == [5]


def test_an_unknown_channels_redis_version_falls_back_to_group_send(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import channels_redis

    monkeypatch.setattr(channels_redis, "__version__", "5.0.0")
    pubsub_settings(settings, "redis://127.0.0.1:6379/15")
    assert type(current_publisher()).__name__ == "_LayerPublisher"


def test_the_wire_reproduces_the_layer_naming_and_sharding() -> None:
    from channels_redis.pubsub import RedisPubSubLoopLayer

    hosts = [{"address": "redis://a:6379"}, {"address": "redis://b:6379"}]
    wire = publisher.pubsub_wire({"hosts": hosts, "prefix": "p"})
    loop_layer = RedisPubSubLoopLayer(hosts=hosts, prefix="p")
    assert wire is not None
    for group in ("incident.5", "region.fengdong", "user.123456", "report.9"):
        channel = loop_layer._get_group_channel_name(group)
        assert wire.channel_name(group) == channel
        assert wire.hosts[wire.shard_index(channel)] == loop_layer._get_shard(channel).host


def test_a_redis_outage_is_logged_and_never_raises(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    pubsub_settings(settings, f"redis://127.0.0.1:{free_port()}/0")  # nothing listens
    with caplog.at_level(logging.ERROR, logger="apps.realtime.publisher"):
        publisher.publish([LIVE])
    assert "publishing 1 committed events failed" in caplog.text


async def test_with_the_in_memory_layer_events_go_through_group_send() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(LIVE.stream, channel)
    await sync_to_async(publisher.publish)([LIVE])
    assert await asyncio.wait_for(layer.receive(channel), 5) == layer_message(LIVE)


async def test_async_code_uses_group_send_on_its_loop_with_the_in_memory_layer() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(LIVE.stream, channel)
    await publisher.apublish([LIVE])
    assert await asyncio.wait_for(layer.receive(channel), 5) == layer_message(LIVE)


async def test_an_async_publishing_failure_is_logged_and_never_raises(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    pubsub_settings(settings, f"redis://127.0.0.1:{free_port()}/0")
    with caplog.at_level(logging.ERROR, logger="apps.realtime.publisher"):
        await publisher.apublish([LIVE])
    assert "publishing 1 committed events failed" in caplog.text
