"""The Python follower against a scripted hub on 127.0.0.1: what it resumes
with, what it hands on across reconnects and sequence spaces, and how it
waits and gives up.

Needs PyPI ``websockets`` (scripts/setup_clients.sh puts it in
target/clients-venv); skipped without it.

Run: target/clients-venv/bin/python -m unittest discover -s crates/quotehub-client/python -p 'test_*.py'
"""

from __future__ import annotations

import asyncio
import json
import struct
import unittest
from contextlib import aclosing
from typing import Any

try:
    from websockets.asyncio.server import ServerConnection, serve
except ImportError as error:  # pragma: no cover - depends on the environment
    raise unittest.SkipTest(f"PyPI websockets is not installed ({error}); run scripts/setup_clients.sh") from error

from quotehub_decoder import Flag
from quotehub_follow import Backoff, Delivered, FollowError, Follower, Reconnecting, Subscribed

EPOCH_A = "9f86d081884c7d65"
EPOCH_B = "0123456789abcdef"
PROTOCOL = "quotehub.v1.binary"

# Waits short enough for a test, the jitter fixed at its lowest.
QUICK = Backoff(initial=0.002, maximum=0.008, max_attempts=3)

# A bound on each test: the scripted hub never makes the follower wait long.
DEADLINE = 20


def quotes(*records: tuple[str, int, Flag]) -> bytes:
    """One binary message of quotes (SPEC.md's layout), each (symbol, seq, flags)."""
    message = struct.pack("<HBBBB2xQ", 16, 0x01, 0, 1, 0, 3)
    for symbol, seq, flags in records:
        message += struct.pack(
            "<HBBI16sQQQqqII", 72, 0x02, int(flags), 0, symbol.encode(), seq, 1, 2, 1_500_000_000, 1_600_000_000, 1, 1
        )
    return message


class ScriptedHub:
    """A hub on 127.0.0.1:0 that plays one script per connection: each a
    coroutine given the connection and the subscribe request it received."""

    def __init__(self, *scripts: Any) -> None:
        self.scripts = list(scripts)
        self.requests: list[dict[str, Any]] = []
        self.url = ""

    async def __aenter__(self) -> ScriptedHub:
        self.server = await serve(self.handle, "127.0.0.1", 0, subprotocols=[PROTOCOL])
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/v1/quotes"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def handle(self, connection: ServerConnection) -> None:
        request = json.loads(await connection.recv())
        self.requests.append(request)
        await self.scripts.pop(0)(connection, request)


def ack(request: dict[str, Any], epoch: str, **extra: Any) -> str:
    reply = {"type": "ack", "id": request["id"], "op": "subscribe", "symbols": request["symbols"], "epoch": epoch}
    return json.dumps({**reply, **extra})


async def collect(follower: Follower) -> list[Any]:
    """Every event until the iterator ends, as plain tuples."""
    seen: list[Any] = []
    async with asyncio.timeout(DEADLINE), aclosing(follower.events()) as events:
        async for event in events:
            if isinstance(event, Subscribed):
                seen.append(("subscribed", event.epoch, event.unseen, event.resumed))
            elif isinstance(event, Reconnecting):
                seen.append(("reconnecting", event.attempt))
            elif isinstance(event, Delivered):
                reset = "reset" if Flag.RESET in event.record.flags else "live"
                seen.append((event.record.symbol, event.record.seq, reset, event.epoch))
    return seen


class FollowerTest(unittest.IsolatedAsyncioTestCase):
    async def test_duplicates_are_dropped_and_a_new_epoch_enters_through_a_reset(self) -> None:
        async def first(connection: ServerConnection, request: dict[str, Any]) -> None:
            await connection.send(ack(request, EPOCH_A))
            await connection.send(quotes(("AAPL", 1, Flag.SNAPSHOT), ("AAPL", 2, Flag(0)), ("AAPL", 2, Flag(0))))
            await connection.send(quotes(("AAPL", 3, Flag(0)), ("MSFT", 9, Flag(0))))
            await connection.close(1001, "hub shutting down")

        async def same_space(connection: ServerConnection, request: dict[str, Any]) -> None:
            await connection.send(ack(request, EPOCH_A))
            await connection.send(quotes(("AAPL", 3, Flag(0)), ("AAPL", 4, Flag(0))))
            await connection.close(1001, "hub shutting down")

        async def restarted(connection: ServerConnection, request: dict[str, Any]) -> None:
            await connection.send(ack(request, EPOCH_B))
            # MSFT has no quote on the new hub yet: its first is live, numbered from 1.
            await connection.send(
                quotes(("AAPL", 2, Flag.SNAPSHOT | Flag.RESET), ("MSFT", 1, Flag(0)), ("AAPL", 3, Flag(0)))
            )
            await connection.close(1000)

        async with ScriptedHub(first, same_space, restarted) as hub:
            follower = Follower(hub.url, ["AAPL", "MSFT"], backoff=QUICK, jitter=lambda: 0.0)
            seen = await collect(follower)
        self.assertEqual(
            seen,
            [
                ("subscribed", EPOCH_A, [], False),
                ("AAPL", 1, "live", EPOCH_A),
                ("AAPL", 2, "live", EPOCH_A),
                ("AAPL", 3, "live", EPOCH_A),
                ("MSFT", 9, "live", EPOCH_A),
                ("reconnecting", 1),
                ("subscribed", EPOCH_A, [], True),
                ("AAPL", 4, "live", EPOCH_A),
                ("reconnecting", 1),
                ("subscribed", EPOCH_B, [], True),
                ("AAPL", 2, "reset", EPOCH_B),
                ("MSFT", 1, "live", EPOCH_B),
                ("AAPL", 3, "live", EPOCH_B),
            ],
        )
        self.assertEqual(
            [request.get("resume") for request in hub.requests], [None, {"AAPL": 3, "MSFT": 9}, {"AAPL": 4, "MSFT": 9}]
        )
        self.assertEqual([request.get("epoch") for request in hub.requests], [None, EPOCH_A, EPOCH_A])
        self.assertEqual(
            (follower.duplicates, follower.resets, follower.epoch_changes, follower.reconnects), (2, 1, 1, 2)
        )

    async def test_a_follower_of_some_channels_names_them_on_every_subscribe(self) -> None:
        async def first(connection: ServerConnection, request: dict[str, Any]) -> None:
            await connection.send(ack(request, EPOCH_A))
            # Quotes only: the shared sequence skips the trades' numbers, no loss.
            await connection.send(quotes(("AAPL", 1, Flag.SNAPSHOT), ("AAPL", 4, Flag(0))))
            await connection.close(1001, "hub shutting down")

        async def resumed(connection: ServerConnection, request: dict[str, Any]) -> None:
            await connection.send(ack(request, EPOCH_A))
            await connection.send(quotes(("AAPL", 6, Flag(0))))
            await connection.close(1000)

        async with ScriptedHub(first, resumed) as hub:
            follower = Follower(hub.url, ["AAPL"], channels=["quotes"], backoff=QUICK, jitter=lambda: 0.0)
            seen = await collect(follower)
        self.assertEqual([request.get("channels") for request in hub.requests], [["quotes"], ["quotes"]])
        self.assertEqual([request.get("resume") for request in hub.requests], [None, {"AAPL": 4}])
        self.assertEqual([event[1] for event in seen if event[0] == "AAPL"], [1, 4, 6])
        self.assertEqual(follower.duplicates, 0)
        with self.assertRaises(ValueError):
            Follower("ws://127.0.0.1:1/v1/quotes", ["AAPL"], channels=[])

    async def test_the_ack_names_the_symbols_no_feed_has_sent(self) -> None:
        async def script(connection: ServerConnection, request: dict[str, Any]) -> None:
            await connection.send(ack(request, EPOCH_A, unseen=["ZZZZ"]))
            await connection.close(1000)

        async with ScriptedHub(script) as hub:
            seen = await collect(Follower(hub.url, ["AAPL", "ZZZZ"]))
        self.assertEqual(seen, [("subscribed", EPOCH_A, ["ZZZZ"], False)])

    async def test_a_refused_subscription_ends_following(self) -> None:
        async def script(connection: ServerConnection, request: dict[str, Any]) -> None:
            await connection.send(json.dumps({"type": "error", "id": 1, "code": "invalid_symbol", "message": "no"}))
            await connection.wait_closed()

        async with ScriptedHub(script) as hub:
            with self.assertRaisesRegex(FollowError, "refused the subscription: invalid_symbol"):
                await collect(Follower(hub.url, ["A B"]))

    async def test_failed_attempts_in_a_row_end_following_and_a_first_failure_at_once(self) -> None:
        async def lost(connection: ServerConnection, request: dict[str, Any]) -> None:
            await connection.send(ack(request, EPOCH_A))
            await connection.close(1011, "gone")

        async def broken(connection: ServerConnection, request: dict[str, Any]) -> None:
            await connection.close(1011, "broken")  # never acknowledged

        async with ScriptedHub(lost, broken, broken, broken) as hub:
            follower = Follower(hub.url, ["AAPL"], backoff=QUICK)
            with self.assertRaisesRegex(FollowError, r"gave up after 3 attempt\(s\) in a row"):
                await collect(follower)
        url = hub.url  # Nothing listens there any more.
        with self.assertRaisesRegex(FollowError, "could not connect"):
            await collect(Follower(url, ["AAPL"], backoff=QUICK))


class BackoffTest(unittest.TestCase):
    def test_waits_double_from_initial_up_to_the_cap_within_the_upper_half(self) -> None:
        backoff = Backoff(initial=0.1, maximum=1.0)
        self.assertEqual([backoff.delay(n, 0.0) for n in range(6)], [0.05, 0.1, 0.2, 0.4, 0.5, 0.5])
        self.assertAlmostEqual(backoff.delay(2, 0.999), 0.3998)


if __name__ == "__main__":
    unittest.main()
