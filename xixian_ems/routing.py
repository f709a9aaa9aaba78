"""WebSocket URL patterns; consumers live in apps.realtime."""

from django.urls import path

from apps.realtime import consumers

websocket_urlpatterns = [
    path("ws/v1/events/", consumers.EventStreamConsumer.as_asgi()),
    path("ws/v1/ping/", consumers.PingConsumer.as_asgi()),
]
