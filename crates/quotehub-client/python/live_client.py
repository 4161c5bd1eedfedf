#!/usr/bin/env python3
"""A third-party client of a running hub, on the PyPI ``websockets`` library.

Subscribes to SYMBOL..., prints the ack as one JSON line, then each record as
one JSON line in the spec's JSON form (prices as exact decimal strings,
integers as integers) until ``--count`` records, and exits 0. A lost
connection is opened again and resumed (quotehub_follow.py): the new ack is
printed, and a symbol whose records were lost comes back as a snapshot
flagged "reset". Symbols no feed has sent yet are named on stderr. Errors, a
refused subscription or key, a normal close by the hub or the ``--timeout``
bound exit 1 with a message on stderr; bad arguments exit 2.

    python live_client.py ws://127.0.0.1:8080/v1/quotes AAPL BRK.B --count 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from quotehub_decoder import Flag, Quote, Record, Status, Trade, format_price
from quotehub_follow import FollowError, Follower, Reconnecting, Subscribed


class ClientError(Exception):
    """A failure to report on stderr before exiting 1."""


def json_form(record: Record) -> dict[str, Any]:
    """The record in the spec's JSON form, so that every client prints the same lines."""
    if isinstance(record, Quote):
        return {
            "type": "quote",
            "sym": record.symbol,
            "seq": record.seq,
            "bp": format_price(record.bid_price),
            "bs": record.bid_size,
            "ap": format_price(record.ask_price),
            "as": record.ask_size,
            "t": record.event_ts,
            "recv_ts": record.recv_ts,
            "flags": record.flags.names(),
            "conflated": record.conflated,
        }
    if isinstance(record, Trade):
        return {
            "type": "trade",
            "sym": record.symbol,
            "seq": record.seq,
            "p": format_price(record.price),
            "s": record.size,
            "t": record.event_ts,
            "recv_ts": record.recv_ts,
            "flags": record.flags.names(),
        }
    if isinstance(record, Status):
        return {
            "type": "status",
            "code": record.name,
            "code_num": record.code,
            "feed": record.feed,
            "ts": record.ts,
            "detail": record.detail,
        }
    return {"type": "unknown", "rtype": record.rtype, "length": record.length}


def print_line(value: dict[str, Any]) -> None:
    """Prints one compact JSON line, flushed: a reader on a pipe must see each as it happens."""
    print(json.dumps(value, separators=(",", ":")), flush=True)


@dataclass
class Progress:
    """How far a run got, for the message when it ends early."""

    count: int
    printed: int = 0


async def stream(url: str, symbols: list[str], progress: Progress, api_key: str | None = None) -> None:
    """Follows ``symbols`` and prints each ack, then records until ``progress.count``.

    A lost connection is opened again and resumed (quotehub_follow): the new
    ack is printed, its epoch naming the sequence space of the records after
    it, and a symbol whose records were lost comes back flagged ``reset``."""
    follower = Follower(url, symbols, api_key=api_key)
    try:
        async with aclosing(follower.events()) as events:
            async for event in events:
                if isinstance(event, Subscribed):
                    print_line(event.ack)
                    for symbol in event.unseen:
                        print(f"{symbol}: no data yet from any feed", file=sys.stderr, flush=True)
                elif isinstance(event, Reconnecting):
                    print(
                        f"live_client.py: {event.reason}; "
                        f"reconnecting in {event.delay:.3f} s (attempt {event.attempt})",
                        file=sys.stderr,
                        flush=True,
                    )
                else:
                    record = event.record
                    if isinstance(record, Quote | Trade) and Flag.RESET in record.flags:
                        print(
                            f"live_client.py: {record.symbol} reset at {record.seq}: records were lost",
                            file=sys.stderr,
                            flush=True,
                        )
                    print_line(json_form(record))
                    progress.printed += 1
                    if progress.printed == progress.count:
                        return
    except FollowError as error:
        raise ClientError(str(error)) from error
    raise ClientError(f"the hub closed the connection after {progress.printed} of {progress.count} records")


def main() -> int:
    parser = argparse.ArgumentParser(description="Prints records of a quotehub hub as JSON lines.")
    parser.add_argument("url", help="ws://HOST:PORT/v1/quotes")
    parser.add_argument("symbols", nargs="+", metavar="SYMBOL")
    parser.add_argument("--count", type=int, default=10, help="records to print before exiting (default 10)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds the whole run may take (default 20)")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("QUOTEHUB_API_KEY") or None,
        help="the key a hub with API keys requires (default: $QUOTEHUB_API_KEY)",
    )
    args = parser.parse_args()
    if args.count < 1:
        parser.error("--count must be at least 1")

    progress = Progress(count=args.count)

    async def bounded() -> None:
        async with asyncio.timeout(args.timeout):
            await stream(args.url, args.symbols, progress, args.api_key)

    try:
        asyncio.run(bounded())
    except TimeoutError:
        print(
            f"live_client.py: timed out after {args.timeout:g} s with {progress.printed} of {progress.count} records",
            file=sys.stderr,
        )
        return 1
    except ClientError as error:
        print(f"live_client.py: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
