"""Following symbols on a hub across lost connections, on PyPI ``websockets``.

A lost connection is opened again after a capped, jittered backoff and the
subscription renewed with ``resume`` = the last ``seq`` seen per symbol and
the ``epoch`` of the last ack (SPEC.md, "Sequence spaces"). The hub then sends
what was missed from its history or, when it cannot (its history no longer
reaches back, or it restarted and numbers in a new sequence space), a
snapshot flagged ``RESET``.

What the caller is handed keeps each symbol's numbers moving forward: a
quote or trade numbered at or below the last one seen in the same sequence
space is a duplicate and is dropped (counted in ``duplicates``); only a
record flagged ``RESET`` may set a symbol's number back, and numbers of an
old space are forgotten once an ack names a new one.

    from contextlib import aclosing
    from quotehub_follow import Delivered, Follower, Subscribed

    async with aclosing(Follower(url, ["AAPL", "MSFT"]).events()) as events:
        async for event in events:
            if isinstance(event, Subscribed):
                for symbol in event.unseen:
                    print(f"{symbol}: no data yet from any feed")
            elif isinstance(event, Delivered):
                print(event.record)   # event.record.flags has Flag.RESET when records were lost
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.typing import Subprotocol

from quotehub_decoder import DecodeError, Flag, Quote, Record, Trade, decode_message

__all__ = ["BINARY_PROTOCOL", "Backoff", "Delivered", "Event", "FollowError", "Follower", "Reconnecting", "Subscribed"]

BINARY_PROTOCOL = "quotehub.v1.binary"

_NORMAL_CLOSURE = 1000


class FollowError(Exception):
    """Following cannot go on: the first connection failed, the hub refused the
    subscription or the API key, sent a malformed message, or every attempt
    of a run of ``Backoff.max_attempts`` failed."""


@dataclass(frozen=True)
class Backoff:
    """How to reconnect (the Rust client's defaults): waits doubling from
    ``initial`` seconds up to ``maximum``, each drawn from the upper half of
    its ceiling so that clients cut off together do not all come back at the
    same instant; ``max_attempts`` failed attempts in a row end the follower."""

    initial: float = 0.1
    maximum: float = 5.0
    max_attempts: int = 20

    def delay(self, failures: int, jitter: float) -> float:
        """The wait before the next attempt after ``failures`` failed ones in
        a row (0 after a lost connection), for ``jitter`` in [0, 1)."""
        ceiling = min(self.maximum, self.initial * 2 ** min(failures, 30))
        return ceiling / 2 + jitter * ceiling / 2


@dataclass(frozen=True)
class Subscribed:
    """The hub acknowledged the subscription, on the first connection or a
    new one; the records after it are numbered in ``epoch``."""

    ack: dict[str, Any]
    epoch: str | None
    unseen: list[str]
    """The requested symbols no feed has published yet: nothing comes for
    them until one does (symbols are case-sensitive)."""
    resumed: bool
    """Whether this renews the subscription on a new connection."""


@dataclass(frozen=True)
class Delivered:
    """A record to hand on, in hub order; a quote or trade flagged
    ``Flag.RESET`` replaces records that were lost."""

    record: Record
    send_ts: int
    """When the hub wrote the message, ns since the Unix epoch."""
    epoch: str | None


@dataclass(frozen=True)
class Reconnecting:
    """The connection was lost or an attempt failed; the next comes after ``delay`` seconds."""

    attempt: int
    delay: float
    reason: str


Event = Subscribed | Delivered | Reconnecting


class Follower:
    """Follows ``symbols`` (``["*"]`` for all) on the hub at ``url`` while
    :meth:`events` is iterated; ``api_key`` goes in the ``Authorization``
    header (never the URL, which ends up in logs). ``channels`` names the
    kinds of records to follow (SPEC.md, "Channels"; default: the hub's,
    quotes and trades); it goes in every subscribe, the resumed ones too, so a
    reconnect resumes exactly those channels."""

    def __init__(
        self,
        url: str,
        symbols: list[str],
        *,
        api_key: str | None = None,
        channels: list[str] | None = None,
        backoff: Backoff | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if not symbols:
            raise ValueError("Follower needs at least one symbol")
        self.url = url
        self.symbols = list(symbols)
        if channels is not None and (not channels or not all(isinstance(name, str) for name in channels)):
            raise ValueError("channels, when given, must be a non-empty list of names")
        self.channels = None if channels is None else list(channels)
        self._headers = [("Authorization", f"Bearer {api_key}")] if api_key else None
        self._backoff = backoff or Backoff()
        self._jitter = jitter
        self.epoch: str | None = None
        """The hub's sequence space, from the last ack."""
        self._last_seq: dict[str, int] = {}
        self.resets = 0
        """Records delivered flagged ``RESET``: times records were lost."""
        self.duplicates = 0
        """Quotes and trades dropped because their number was already delivered."""
        self.epoch_changes = 0
        """Acks that named another sequence space than the one before (a hub restart)."""
        self.reconnects = 0
        """Connections opened again after one was lost."""

    def last_seq(self, symbol: str) -> int | None:
        """The last sequence number delivered for ``symbol`` in the current space."""
        return self._last_seq.get(symbol)

    async def events(self) -> AsyncIterator[Event]:
        """What happens, in order, until the hub closes normally (the iterator
        ends) or following cannot go on (:class:`FollowError`). Close it
        (``contextlib.aclosing``) to stop following."""
        failures = 0  # attempts in a row that got no ack
        reason: str | None = None
        while True:
            if reason is not None:
                if failures >= self._backoff.max_attempts:
                    raise FollowError(f"gave up after {failures} attempt(s) in a row: {reason}")
                delay = self._backoff.delay(failures, self._jitter())
                yield Reconnecting(attempt=failures + 1, delay=delay, reason=reason)
                await asyncio.sleep(delay)
            resumed = reason is not None
            try:
                connection = await connect(
                    self.url, subprotocols=[Subprotocol(BINARY_PROTOCOL)], additional_headers=self._headers
                )
            except InvalidStatus as error:
                if error.response.status_code in (401, 403) or not resumed:
                    raise FollowError(f"could not connect to {self.url}: {error}") from error
                failures, reason = failures + 1, str(error)
                continue
            except InvalidURI as error:
                raise FollowError(f"cannot connect to {self.url}: {error}") from error
            except (OSError, InvalidHandshake, TimeoutError) as error:
                # A first connection that fails is a wrong URL or a hub not started: said at once.
                if not resumed:
                    raise FollowError(f"could not connect to {self.url}: {error}") from error
                failures, reason = failures + 1, f"could not connect: {error}"
                continue
            subscribed = False
            async with connection:
                if connection.subprotocol != BINARY_PROTOCOL:
                    raise FollowError(f"the hub chose sub-protocol {connection.subprotocol!r}, not {BINARY_PROTOCOL}")
                try:
                    await connection.send(json.dumps(self._request()))
                    async for message in connection:
                        if isinstance(message, str):
                            ack = self._reply(message)
                            if ack is not None:
                                subscribed = True
                                if resumed:
                                    self.reconnects += 1
                                yield self._subscribed(ack, resumed)
                            continue
                        decoded = decode_message(message)
                        for record in decoded.records:
                            if self._keep(record):
                                yield Delivered(record=record, send_ts=decoded.send_ts, epoch=self.epoch)
                except ConnectionClosed:
                    pass  # Judged below by the close code.
                except DecodeError as error:
                    raise FollowError(f"malformed message from the hub: {error}") from error
            code = connection.close_code
            if code == _NORMAL_CLOSURE:
                return
            failures = 0 if subscribed else failures + 1
            reason = f"connection closed (code {code}: {connection.close_reason or 'no reason'})"

    def _request(self) -> dict[str, Any]:
        request: dict[str, Any] = {"op": "subscribe", "symbols": self.symbols, "id": 1}
        if self.channels is not None:
            request["channels"] = self.channels
        if self._last_seq:
            request["resume"] = dict(self._last_seq)
            if self.epoch is not None:
                request["epoch"] = self.epoch
        return request

    @staticmethod
    def _reply(text: str) -> dict[str, Any] | None:
        """Our subscription's ack; an error reply ends following, a reply of
        a type this reader does not know is ignored, as the spec asks."""
        try:
            reply = json.loads(text)
        except ValueError as error:
            raise FollowError(f"unreadable reply from the hub: {text!r}") from error
        if not isinstance(reply, dict):
            raise FollowError(f"unexpected reply: {text}")
        if reply.get("type") == "ack" and reply.get("id") == 1:
            return reply
        if reply.get("type") == "error":
            raise FollowError(f"the hub refused the subscription: {reply.get('code')}: {reply.get('message')}")
        return None

    def _subscribed(self, ack: dict[str, Any], resumed: bool) -> Subscribed:
        epoch = ack.get("epoch")
        if isinstance(epoch, str):
            if self.epoch is not None and epoch != self.epoch:
                # Numbers of another space are no resume points and no order:
                # the hub has flagged its snapshots of the resumed symbols RESET.
                self._last_seq.clear()
                self.epoch_changes += 1
            self.epoch = epoch
        unseen = ack.get("unseen")
        unseen = [symbol for symbol in unseen if isinstance(symbol, str)] if isinstance(unseen, list) else []
        return Subscribed(ack=ack, epoch=self.epoch, unseen=unseen, resumed=resumed)

    def _keep(self, record: Record) -> bool:
        """Whether to deliver ``record``, noting its number."""
        if not isinstance(record, Quote | Trade):
            return True
        last = self._last_seq.get(record.symbol)
        if Flag.RESET in record.flags:
            self.resets += 1
        elif last is not None and record.seq <= last:
            self.duplicates += 1
            return False
        self._last_seq[record.symbol] = record.seq
        return True
