"""A cheap WebSocket client fleet for the realtime benchmark: thousands of sockets in one
process, every frame timestamped the moment its bytes arrive.

Why not the ``websockets`` client: it runs a reader task per connection and a queue and
several awaits per frame; a broadcast to 10,000 sockets made the client do all that
10,000 times on the same 2 cores as the servers, and a frame's arrival was stamped only
when its reader task got its turn behind the other 9,999: the figure measured the client
as much as the server. Here each connection is an
``asyncio.Protocol`` (uvloop): ``data_received`` stamps the bytes with
``CLOCK_MONOTONIC`` before anything else and splits them into frames; the JSON of a
measured frame is decoded after the run, not while frames are still arriving.

It speaks RFC 6455 as a client must: an HTTP/1.1 Upgrade with a random
``Sec-WebSocket-Key`` whose ``Sec-WebSocket-Accept`` is checked, masked client frames,
answers to pings, a clean close. No extensions (no per-message deflate, as the project's
clients), no fragmentation (the servers send every frame whole).
"""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import json
import os
import struct
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class HandshakeError(RuntimeError):
    """The server did not upgrade the connection."""


def _mask(payload: bytes, key: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``key`` (RFC 6455 section 5.3) in one big-int op."""
    if not payload:
        return payload
    n = len(payload)
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One masked, unfragmented client frame."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return header + key + _mask(payload, key)


class Connection(asyncio.Protocol):
    """One client socket. Once the fleet is :attr:`Fleet.recording`, its text frames go to
    :attr:`Fleet.frames`; before that, :meth:`recv` hands them out one by one."""

    def __init__(self, fleet: Fleet, index: int, host: str, target: str) -> None:
        self.fleet = fleet
        self.index = index
        self.request_host = host
        self.target = target
        self.key = base64.b64encode(os.urandom(16))
        self.transport: asyncio.Transport | None = None
        self.handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.buffer = b""
        self.upgraded = False
        self.inbox: deque[bytes] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self.close_code: int | None = None

    # asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = transport = cast(asyncio.Transport, transport)
        transport.write(
            b"GET " + self.target.encode() + b" HTTP/1.1\r\n"
            b"Host: " + self.request_host.encode() + b"\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + self.key + b"\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()  # before any parsing: the arrival of these bytes
        buffer = self.buffer + data if self.buffer else data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            self._check_upgrade(buffer[:end])
            buffer = buffer[end + 4 :]
            if not self.upgraded:
                return
        pos, size = 0, len(buffer)
        while size - pos >= 2:
            b0, b1 = buffer[pos], buffer[pos + 1]
            length, head = b1 & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                (length,) = struct.unpack_from("!H", buffer, pos + 2)
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                (length,) = struct.unpack_from("!Q", buffer, pos + 2)
                head = 10
            if b1 & 0x80 or not b0 & 0x80:
                self._fail("masked or fragmented server frame")
                return
            end = pos + head + length
            if end > size:
                break
            self._frame(b0 & 0x0F, buffer[pos + head : end], now)
            pos = end
        self.buffer = buffer[pos:]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(exc or HandshakeError("connection closed"))
        if not self.closed.done():
            self.closed.set_result(None)
        self._wake()

    # Frames -------------------------------------------------------------------------------

    def _check_upgrade(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(b":") for line in lines[1:])
        }
        accept = base64.b64encode(hashlib.sha1(self.key + GUID).digest())  # noqa: S324 (RFC 6455)
        if b" 101 " not in lines[0] + b" " or headers.get(b"sec-websocket-accept") != accept:
            self._fail(f"no upgrade: {lines[0].decode(errors='replace')}")
            return
        self.upgraded = True
        self.handshake.set_result(None)

    def _frame(self, opcode: int, payload: bytes, now: int) -> None:
        if opcode == OP_TEXT:
            if self.fleet._recording:  # the property, without the call (every frame)
                self.fleet.frames.append((now, self.index, payload))
            else:
                self.inbox.append(payload)
                self._wake()
        elif opcode == OP_PING:
            self.send_frame(OP_PONG, payload)
        elif opcode == OP_CLOSE:
            self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            if self.transport is not None and not self.transport.is_closing():
                self.send_frame(OP_CLOSE, payload[:2])
                self.transport.close()
        elif opcode == OP_BINARY:
            self.fleet.unexpected.append(f"binary frame of {len(payload)} bytes")

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _fail(self, reason: str) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(HandshakeError(reason))
        else:
            self.fleet.unexpected.append(reason)
        if self.transport is not None:
            self.transport.abort()

    # API ----------------------------------------------------------------------------------

    def send_frame(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(opcode, payload))

    def send_json(self, message: Any) -> None:
        self.send_frame(OP_TEXT, json.dumps(message).encode())

    async def recv(self, timeout: float = 60.0) -> Any:
        """The next text frame, decoded (set-up only: before :attr:`Fleet.recording`)."""
        deadline = time.monotonic() + timeout
        while not self.inbox:
            if self.closed.done():
                raise HandshakeError(f"closed ({self.close_code}) while waiting for a frame")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no frame")
            self.waiter = asyncio.get_running_loop().create_future()
            await asyncio.wait_for(self.waiter, remaining)
        return json.loads(self.inbox.popleft())

    async def close(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.send_frame(OP_CLOSE, struct.pack("!H", 1000))
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), 5)
        except TimeoutError:
            self.transport.abort()


@dataclass
class Fleet:
    """Many sockets of one process; with :attr:`recording` on, every text frame of every
    socket is kept as ``(arrival ns, socket index, text)`` in :attr:`frames` (the index
    of the socket's target in :meth:`open`)."""

    parallel: int = 100
    connections: list[Connection] = field(default_factory=list)
    frames: list[tuple[int, int, bytes]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    _recording: bool = False
    open_s: float = 0.0
    closed_early: int = 0  # sockets the server had closed before close()
    opened: int = 0  # sockets connected and subscribed by open()

    @property
    def recording(self) -> bool:
        return self._recording

    @recording.setter
    def recording(self, on: bool) -> None:
        """Keep frames from now on (``True``) or stop (``False``).

        The cyclic garbage collector is off while recording: a full collection walks every
        object of this process (10,000 connections, the frames so far) and took 50-390 ms
        here, stalling the reader of every socket, so frames arriving meanwhile were
        stamped late and the client's pause was counted as the server's latency. The
        objects alive at the start are frozen out of later collections; reference
        counting still frees everything that is not a cycle.
        """
        if on and not self._recording:
            gc.collect()
            gc.freeze()
            gc.disable()
        elif not on and self._recording:
            gc.enable()
            gc.unfreeze()
        self._recording = on

    async def connect(self, url: str, index: int = 0) -> Connection:
        parts = urlsplit(url)
        if parts.hostname != "127.0.0.1" or parts.scheme != "ws":
            raise ValueError(f"only ws://127.0.0.1 targets: {url}")
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        loop = asyncio.get_running_loop()
        host = f"{parts.hostname}:{parts.port}"
        _transport, conn = await loop.create_connection(
            lambda: Connection(self, index, host, target), parts.hostname, parts.port
        )
        await asyncio.wait_for(conn.handshake, 60)
        return conn

    async def open(self, targets: Sequence[tuple[str, dict[str, Any] | None]]) -> None:
        """Connect to each ``(url, subscribe message)``: the project's sockets first say
        ``hello``, get the message and answer ``subscribed``; the raw app's (message
        ``None``) answer ``subscribed`` by themselves. ``parallel`` at a time."""
        gate = asyncio.Semaphore(self.parallel)
        started = time.perf_counter()

        async def one(index: int, url: str, subscribe: dict[str, Any] | None) -> None:
            async with gate:
                conn = await self.connect(url, index)
                if subscribe is not None:
                    hello = await conn.recv()
                    if hello.get("type") != "hello":
                        raise HandshakeError(f"no hello: {hello}")
                    conn.send_json(subscribe)
                answer = await conn.recv()
                if answer.get("type") != "subscribed":
                    raise HandshakeError(f"subscribe refused: {answer}")
                self.connections.append(conn)

        await asyncio.gather(*(one(k, url, message) for k, (url, message) in enumerate(targets)))
        self.open_s = time.perf_counter() - started
        self.opened = len(self.connections)
        leftovers = sum(len(conn.inbox) for conn in self.connections)
        if leftovers:
            self.unexpected.append(f"{leftovers} frames before recording started")

    async def close(self) -> None:
        self.recording = False
        self.closed_early = self.closed_by_server
        for start in range(0, len(self.connections), 500):
            await asyncio.gather(
                *(conn.close() for conn in self.connections[start : start + 500]),
                return_exceptions=True,
            )
        self.connections.clear()

    @property
    def closed_by_server(self) -> int:
        return sum(1 for conn in self.connections if conn.closed.done())
