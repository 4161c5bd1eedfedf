"""Reference decoder for quotehub binary messages, protocol version 1.

Written from ``crates/quotehub-proto/SPEC.md`` alone, with the standard
library only. Prices are exact :class:`decimal.Decimal` values with scale 9;
every integer is a Python ``int``, so 64-bit fields never lose precision.

>>> message = decode_message(data)
>>> for record in message.records:
...     print(record)
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "MAJOR_VERSION",
    "Bar",
    "Bbo",
    "DecodeError",
    "Flag",
    "Message",
    "Quote",
    "Record",
    "Status",
    "Trade",
    "Unknown",
    "decode_message",
    "format_price",
    "price_from_units",
]

MAJOR_VERSION = 1
"""The only major version this reader knows; others are rejected."""

# The channel names a request may carry (SPEC.md, "Channels"): what
# ``quotehub_follow.Follower(channels=...)`` passes on; a hub that does not
# carry one answers ``unknown_channel``.
CHANNELS = ("quotes", "trades", "bars.1s", "bars.1m", "bbo")

_RTYPE_MESSAGE_HEADER = 0x01
_RTYPE_QUOTE = 0x02
_RTYPE_TRADE = 0x03
_RTYPE_STATUS = 0x04
# Minor version 1: sent only to clients that name the bars.* or bbo channels.
_RTYPE_BAR = 0x05
_RTYPE_BBO = 0x06

# Documented lengths: a known record may be longer (a later minor version
# appended fields) but never shorter.
_MIN_LENGTH = {
    _RTYPE_MESSAGE_HEADER: 16,
    _RTYPE_QUOTE: 72,
    _RTYPE_TRADE: 64,
    _RTYPE_STATUS: 24,
    _RTYPE_BAR: 104,
    _RTYPE_BBO: 88,
}

_RECORD_HEADER = struct.Struct("<HBB")  # length, rtype, flags
_MESSAGE_HEADER = struct.Struct("<4xBB2xQ")  # major, minor, send_ts
# conflated, symbol, seq, event_ts, recv_ts, bid_price, ask_price, bid_size, ask_size
_QUOTE = struct.Struct("<4xI16sQQQqqII")
# conflated, symbol, seq, event_ts, recv_ts, price, size
_TRADE = struct.Struct("<4xI16sQQQqI4x")
_STATUS = struct.Struct("<4xHHQQ")  # code, feed, ts, detail
# conflated, symbol, seq, start_ts, recv_ts, open, high, low, close, vwap, volume, interval_s, trade_count
_BAR = struct.Struct("<4xI16sQQQqqqqqQII")
# conflated, symbol, seq, event_ts, recv_ts, bid_price, ask_price, bid_size, ask_size,
# bid_feed, ask_feed, bid_feeds, ask_feeds
_BBO = struct.Struct("<4xI16sQQQqqQQHHHH")

_STATUS_NAMES = {
    1: "replay_started",
    2: "replay_looped",
    3: "replay_ended",
    4: "upstream_down",
    5: "upstream_up",
    6: "shutdown",
}


class DecodeError(ValueError):
    """A malformed message, or one of a major version this reader does not know."""


class Flag(enum.IntFlag):
    """Record flags. Bits this reader does not know are dropped, as the spec asks."""

    SNAPSHOT = 0x01
    CONFLATED = 0x02
    REPLAYED = 0x04
    RESET = 0x08

    @classmethod
    def from_bits(cls, bits: int) -> Flag:
        """The known flags among ``bits``; reserved bits are ignored."""
        return cls(bits & sum(flag.value for flag in cls))

    def names(self) -> list[str]:
        """The set flags' names as the JSON form writes them: ``["snapshot", "reset"]``."""
        return [str(flag.name).lower() for flag in Flag if flag in self]


@dataclass(frozen=True, slots=True)
class Quote:
    """Best bid and offer of one symbol."""

    symbol: str
    seq: int
    event_ts: int
    """Venue time, ns since the Unix epoch."""
    recv_ts: int
    """Hub ingest time, ns since the Unix epoch."""
    bid_price: Decimal
    bid_size: int
    ask_price: Decimal
    ask_size: int
    conflated: int
    """How many updates were merged into this one (0 if none)."""
    flags: Flag


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade of one symbol."""

    symbol: str
    seq: int
    event_ts: int
    recv_ts: int
    price: Decimal
    size: int
    flags: Flag
    conflated: int = 0
    """Records merged into this one while the client lagged (0 if none)."""


@dataclass(frozen=True, slots=True)
class Status:
    """A change of a feed's or the hub's state."""

    code: int
    name: str
    """The code's name, or ``"unknown"`` for a code this reader does not know."""
    feed: int
    ts: int
    detail: int


@dataclass(frozen=True, slots=True)
class Bar:
    """Open, high, low, close, volume, trade count and VWAP of one symbol's
    trades over one interval of event time (channels ``bars.1s``, ``bars.1m``)."""

    symbol: str
    seq: int
    """Sequence number among the symbol's bars of this interval, from 1."""
    interval: str
    """The interval as in the channel name: ``"1s"``, ``"1m"`` (``"<n>m"`` or ``"<n>s"``)."""
    interval_s: int
    start_ts: int
    """Start of the interval, ns since the Unix epoch (event time, aligned)."""
    recv_ts: int
    """When the hub closed the bar, ns since the Unix epoch."""
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    vwap: Decimal
    """Exact VWAP rounded to 10^-9, halves away from zero."""
    volume: int
    trade_count: int
    conflated: int
    flags: Flag


@dataclass(frozen=True, slots=True)
class Bbo:
    """The consolidated best bid and offer of one symbol across the hub's feeds (channel ``bbo``)."""

    symbol: str
    seq: int
    """Sequence number among the symbol's BBO records, from 1."""
    event_ts: int
    recv_ts: int
    bid_price: Decimal
    bid_size: int
    """Shares at ``bid_price``, summed over the feeds quoting it."""
    bid_feed: int
    """The (lowest-numbered) feed quoting ``bid_price``."""
    bid_feeds: int
    """How many feeds quote ``bid_price``; 0 means no bid."""
    ask_price: Decimal
    ask_size: int
    ask_feed: int
    ask_feeds: int
    conflated: int
    flags: Flag


@dataclass(frozen=True, slots=True)
class Unknown:
    """A record of a type this reader does not know, skipped by its length."""

    rtype: int
    length: int


Record = Quote | Trade | Status | Bar | Bbo | Unknown


@dataclass(frozen=True, slots=True)
class Message:
    """One binary WebSocket message: its header and its records, in order."""

    version: int
    minor: int
    send_ts: int
    """When the hub wrote the message, ns since the Unix epoch."""
    records: list[Record]


def price_from_units(units: int) -> Decimal:
    """The exact price of ``units`` counts of 10^-9.

    Built from a string, which is exact whatever the current decimal context;
    ``Decimal(units).scaleb(-9)`` would round under a context precision below 19.
    """
    return Decimal(f"{units}E-9")


def format_price(price: Decimal) -> str:
    """A price as a plain decimal string, no exponent, no trailing zeros: ``"18.73"``."""
    return format(price.normalize(), "f")


def decode_message(data: bytes | bytearray | memoryview) -> Message:
    """Decodes one binary WebSocket message.

    Records of an unknown type come back as :class:`Unknown`; fields appended
    to known records are skipped. Raises :class:`DecodeError` on a malformed
    message or an unknown major version.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"decode_message expects bytes, got {type(data).__name__}")
    view = memoryview(data).cast("B")
    total = len(view)
    header: tuple[int, int, int] | None = None
    records: list[Record] = []
    offset = 0
    while offset < total:
        remaining = total - offset
        if remaining < _RECORD_HEADER.size:
            raise DecodeError(f"truncated message: {remaining} stray byte(s) at offset {offset}, too few for a record")
        length, rtype, flags = _RECORD_HEADER.unpack_from(view, offset)
        # A length below 8 could never advance past a record (0 would loop forever).
        if length < 8 or length % 8 != 0:
            raise DecodeError(
                f"record at offset {offset} (rtype 0x{rtype:02x}) has length {length}, not a positive multiple of 8"
            )
        if length > remaining:
            raise DecodeError(
                f"truncated message: record at offset {offset} (rtype 0x{rtype:02x}) has length {length} "
                f"but only {remaining} byte(s) remain"
            )
        min_length = _MIN_LENGTH.get(rtype)
        if min_length is not None and length < min_length:
            raise DecodeError(
                f"record at offset {offset} (rtype 0x{rtype:02x}) has length {length}, "
                f"shorter than its documented {min_length}"
            )
        if header is None:
            if rtype != _RTYPE_MESSAGE_HEADER:
                raise DecodeError(f"the first record is rtype 0x{rtype:02x}, not a message header (0x01)")
            header = _MESSAGE_HEADER.unpack_from(view, offset)
            if header[0] != MAJOR_VERSION:
                raise DecodeError(
                    f"unsupported protocol major version {header[0]}: this reader knows version {MAJOR_VERSION}"
                )
        elif rtype == _RTYPE_MESSAGE_HEADER:
            raise DecodeError(f"a second message header at offset {offset}: only the first record may be one")
        else:
            records.append(_read_record(view, offset, rtype, length, flags))
        offset += length
    if header is None:
        raise DecodeError("empty message: expected at least a message header")
    version, minor, send_ts = header
    return Message(version=version, minor=minor, send_ts=send_ts, records=records)


def _read_record(view: memoryview, offset: int, rtype: int, length: int, flags: int) -> Record:
    if rtype == _RTYPE_QUOTE:
        conflated, symbol, seq, event_ts, recv_ts, bid, ask, bid_size, ask_size = _QUOTE.unpack_from(view, offset)
        return Quote(
            symbol=_symbol(symbol, offset),
            seq=seq,
            event_ts=event_ts,
            recv_ts=recv_ts,
            bid_price=price_from_units(bid),
            bid_size=bid_size,
            ask_price=price_from_units(ask),
            ask_size=ask_size,
            conflated=conflated,
            flags=Flag.from_bits(flags),
        )
    if rtype == _RTYPE_TRADE:
        conflated, symbol, seq, event_ts, recv_ts, price, size = _TRADE.unpack_from(view, offset)
        return Trade(
            symbol=_symbol(symbol, offset),
            seq=seq,
            event_ts=event_ts,
            recv_ts=recv_ts,
            price=price_from_units(price),
            size=size,
            flags=Flag.from_bits(flags),
            conflated=conflated,
        )
    if rtype == _RTYPE_STATUS:
        code, feed, ts, detail = _STATUS.unpack_from(view, offset)
        return Status(code=code, name=_STATUS_NAMES.get(code, "unknown"), feed=feed, ts=ts, detail=detail)
    if rtype == _RTYPE_BAR:
        (conflated, symbol, seq, start_ts, recv_ts, open_, high, low, close, vwap, volume, interval_s, trade_count) = (
            _BAR.unpack_from(view, offset)
        )
        return Bar(
            symbol=_symbol(symbol, offset),
            seq=seq,
            interval=_interval_name(interval_s),
            interval_s=interval_s,
            start_ts=start_ts,
            recv_ts=recv_ts,
            open=price_from_units(open_),
            high=price_from_units(high),
            low=price_from_units(low),
            close=price_from_units(close),
            vwap=price_from_units(vwap),
            volume=volume,
            trade_count=trade_count,
            conflated=conflated,
            flags=Flag.from_bits(flags),
        )
    if rtype == _RTYPE_BBO:
        fields = _BBO.unpack_from(view, offset)
        conflated, symbol, seq, event_ts, recv_ts, bid, ask = fields[:7]
        bid_size, ask_size, bid_feed, ask_feed, bid_feeds, ask_feeds = fields[7:]
        return Bbo(
            symbol=_symbol(symbol, offset),
            seq=seq,
            event_ts=event_ts,
            recv_ts=recv_ts,
            bid_price=price_from_units(bid),
            bid_size=bid_size,
            bid_feed=bid_feed,
            bid_feeds=bid_feeds,
            ask_price=price_from_units(ask),
            ask_size=ask_size,
            ask_feed=ask_feed,
            ask_feeds=ask_feeds,
            conflated=conflated,
            flags=Flag.from_bits(flags),
        )
    return Unknown(rtype=rtype, length=length)


def _interval_name(seconds: int) -> str:
    """A bar interval as in its channel name: whole minutes as ``<n>m``, else ``<n>s``."""
    return f"{seconds // 60}m" if seconds and seconds % 60 == 0 else f"{seconds}s"


def _symbol(raw: bytes, offset: int) -> str:
    """The symbol of a 16-byte, NUL-padded ASCII field."""
    text = raw.rstrip(b"\0")
    if not text:
        raise DecodeError(f"record at offset {offset} has an empty symbol")
    for position, byte in enumerate(text):
        if not 0x21 <= byte <= 0x7E:
            raise DecodeError(
                f"record at offset {offset} has a malformed symbol field (byte 0x{byte:02x} at position {position})"
            )
    return text.decode("ascii")
