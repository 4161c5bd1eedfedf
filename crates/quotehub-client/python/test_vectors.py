"""The Python decoder against the test vectors of SPEC.md.

The vectors are read from the spec itself, and every field is checked
against the values the spec's vector descriptions give; then the
versioning rules and malformed input.

Run: python3 -m unittest discover -s crates/quotehub-client/python -p 'test_*.py'
"""

from __future__ import annotations

import re
import struct
import unittest
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path

from quotehub_decoder import (
    Bar,
    Bbo,
    DecodeError,
    Flag,
    Message,
    Quote,
    Record,
    Status,
    Trade,
    Unknown,
    decode_message,
    format_price,
    price_from_units,
)

SPEC = Path(__file__).resolve().parents[2] / "quotehub-proto" / "SPEC.md"


def spec_vectors() -> dict[str, bytes]:
    """Every ``### V<n> ...`` vector of SPEC.md, by name, in the spec's order."""
    text = SPEC.read_text(encoding="utf-8")
    pattern = re.compile(r"^### (V\d+)\b[^\n]*\n+```hex\n(.*?)```", re.MULTILINE | re.DOTALL)
    return {name: bytes.fromhex(hex_text) for name, hex_text in pattern.findall(text)}


VECTORS = spec_vectors()

# V2..V4 do not describe their message header; their bytes are V1's.
SEND_TS = 1499697123000000000

GOOD_QUOTE = Quote(
    symbol="GOOD",
    seq=1,
    event_ts=1499697120000000000,
    recv_ts=1499697120000005000,
    bid_price=Decimal("18.73"),
    bid_size=993,
    ask_price=Decimal("18.75"),
    ask_size=297,
    conflated=0,
    flags=Flag(0),
)

EXPECTED: dict[str, list[Record]] = {
    "V1": [GOOD_QUOTE],
    "V2": [
        Quote(
            symbol="BRK.B",
            seq=42,
            event_ts=1499697121000000001,
            recv_ts=1499697121000100000,
            bid_price=Decimal("-0.0001"),
            bid_size=0,
            ask_price=Decimal("165.1234"),
            ask_size=4294967295,
            conflated=0,
            flags=Flag.SNAPSHOT,
        ),
        Trade(
            symbol="AAPL",
            seq=7,
            event_ts=1499697122500000000,
            recv_ts=1499697122500004000,
            price=Decimal("148.91"),
            size=283,
            flags=Flag.REPLAYED,
        ),
    ],
    "V3": [Unknown(rtype=0x7F, length=8), replace(GOOD_QUOTE, conflated=3, flags=Flag.CONFLATED)],
    "V4": [
        Status(code=2, name="replay_looped", feed=0, ts=1499697124000000000, detail=1),
        replace(GOOD_QUOTE, flags=Flag.SNAPSHOT | Flag.RESET),
    ],
    "V5": [
        Bar(
            symbol="AAPL",
            seq=1,
            interval="1s",
            interval_s=1,
            start_ts=1499697122000000000,
            recv_ts=1499697123000002000,
            open=Decimal("148.90"),
            high=Decimal("148.95"),
            low=Decimal("148.88"),
            close=Decimal("148.91"),
            vwap=Decimal("148.920980966"),
            volume=683,
            trade_count=4,
            conflated=0,
            flags=Flag(0),
        ),
        Bar(
            symbol="BRK.B",
            seq=12,
            interval="1m",
            interval_s=60,
            start_ts=1499697060000000000,
            recv_ts=1499697120000003000,
            open=Decimal("165.1234"),
            high=Decimal("165.1234"),
            low=Decimal("165.1234"),
            close=Decimal("165.1234"),
            vwap=Decimal("165.1234"),
            volume=7,
            trade_count=1,
            conflated=0,
            flags=Flag.SNAPSHOT | Flag.REPLAYED,
        ),
    ],
    "V6": [
        Bbo(
            symbol="GOOD",
            seq=5,
            event_ts=1499697120000000000,
            recv_ts=1499697120000005000,
            bid_price=Decimal("18.73"),
            bid_size=1293,
            bid_feed=1,
            bid_feeds=2,
            ask_price=Decimal("18.75"),
            ask_size=297,
            ask_feed=2,
            ask_feeds=1,
            conflated=0,
            flags=Flag(0),
        ),
        Bbo(
            symbol="ZVZZT",
            seq=1,
            event_ts=1499697121000000000,
            recv_ts=1499697121000007000,
            bid_price=Decimal(0),
            bid_size=0,
            bid_feed=0,
            bid_feeds=0,
            ask_price=Decimal("10.01"),
            ask_size=4294967296,
            ask_feed=3,
            ask_feeds=1,
            conflated=0,
            flags=Flag.SNAPSHOT,
        ),
    ],
}

# V5 and V6 hold records of minor version 1, and their headers say so.
MINOR = {"V5": 1, "V6": 1}

# The exact price strings of each vector, beyond Decimal equality (18.73 == 18.730).
EXPECTED_PRICE_TEXT = {
    "V1": ["18.73", "18.75"],
    "V2": ["-0.0001", "165.1234", "148.91"],
    "V3": ["18.73", "18.75"],
    "V4": ["18.73", "18.75"],
    "V5": ["148.9", "148.95", "148.88", "148.91", "148.920980966"] + ["165.1234"] * 5,
    "V6": ["18.73", "18.75", "0", "10.01"],
}

DOCUMENTED_LENGTH = {Quote: 72, Trade: 64, Status: 24, Bar: 104, Bbo: 88}

QUOTE_AT = 16
"""Where V1's quote starts, after the 16-byte message header."""


def edited_v1(offset: int, fmt: str, value: int | bytes) -> bytes:
    """V1 with ``value`` packed as ``fmt`` at ``offset``."""
    data = bytearray(VECTORS["V1"])
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


def prices(records: list[Record]) -> list[str]:
    """The records' prices as format_price writes them, in order."""
    out: list[str] = []
    for record in records:
        if isinstance(record, Quote):
            out += [format_price(record.bid_price), format_price(record.ask_price)]
        elif isinstance(record, Trade):
            out.append(format_price(record.price))
        elif isinstance(record, Bar):
            out += [format_price(p) for p in (record.open, record.high, record.low, record.close, record.vwap)]
        elif isinstance(record, Bbo):
            out += [format_price(record.bid_price), format_price(record.ask_price)]
    return out


class SpecVectors(unittest.TestCase):
    def test_spec_holds_exactly_v1_to_v6(self) -> None:
        self.assertEqual(sorted(VECTORS), ["V1", "V2", "V3", "V4", "V5", "V6"])

    def test_each_vector_decodes_to_its_description(self) -> None:
        for name, records in EXPECTED.items():
            with self.subTest(name):
                message = decode_message(VECTORS[name])
                minor = MINOR.get(name, 0)
                self.assertEqual(message, Message(version=1, minor=minor, send_ts=SEND_TS, records=records))
                self.assertEqual(prices(message.records), EXPECTED_PRICE_TEXT[name])

    def test_v5_vwap_is_the_exact_vwap_of_its_trades_rounded_half_away_from_zero(self) -> None:
        # The trades SPEC.md's V5 description lists, as (price, size).
        trades = [("148.90", 100), ("148.95", 250), ("148.88", 50), ("148.91", 283)]
        with localcontext() as context:
            context.prec = 60
            notional = sum(Decimal(price) * size for price, size in trades)
            volume = sum(size for _, size in trades)
            want = (notional / volume).quantize(Decimal("1E-9"), ROUND_HALF_UP)
        bar = decode_message(VECTORS["V5"]).records[0]
        assert isinstance(bar, Bar)
        self.assertEqual((bar.vwap, bar.volume), (want, volume))
        self.assertEqual(bar.vwap.as_tuple(), want.as_tuple())

    def test_prices_are_exact_decimals_with_scale_9(self) -> None:
        quote = decode_message(VECTORS["V2"]).records[0]
        assert isinstance(quote, Quote)
        self.assertIsInstance(quote.bid_price, Decimal)
        self.assertEqual(quote.bid_price.as_tuple(), Decimal("-0.000100000").as_tuple())

    def test_every_truncation_decodes_to_a_prefix_or_raises_decode_error(self) -> None:
        for name, records in EXPECTED.items():
            data = VECTORS[name]
            # Truncating at a record boundary leaves a shorter, valid message.
            boundaries = {16}
            end = 16
            for record in records:
                end += record.length if isinstance(record, Unknown) else DOCUMENTED_LENGTH[type(record)]
                boundaries.add(end)
            self.assertEqual(end, len(data), f"{name}: the records fill the vector")
            for length in range(len(data)):
                with self.subTest(name, length=length):
                    if length in boundaries:
                        got = decode_message(data[:length]).records
                        self.assertEqual(got, records[: len(got)])
                    else:
                        self.assertRaises(DecodeError, decode_message, data[:length])

    def test_accepts_bytearray_and_memoryview(self) -> None:
        data = VECTORS["V2"]
        want = decode_message(data)
        self.assertEqual(decode_message(bytearray(data)), want)
        self.assertEqual(decode_message(memoryview(b"\xab" * 5 + data)[5:]), want)
        with self.assertRaisesRegex(DecodeError, "expects bytes"):
            decode_message("10 00 01 00")  # type: ignore[arg-type]


class VersioningRules(unittest.TestCase):
    def test_a_major_version_other_than_1_is_rejected(self) -> None:
        for major in (0, 2, 255):
            with self.subTest(major=major):
                with self.assertRaisesRegex(DecodeError, rf"major version {major}\b"):
                    decode_message(edited_v1(4, "<B", major))

    def test_any_minor_version_is_accepted(self) -> None:
        message = decode_message(edited_v1(5, "<B", 7))
        self.assertEqual(message.minor, 7)
        self.assertEqual(message.records, EXPECTED["V1"])

    def test_a_message_must_start_with_a_message_header(self) -> None:
        with self.assertRaisesRegex(DecodeError, "not a message header"):
            decode_message(VECTORS["V1"][QUOTE_AT:])
        with self.assertRaisesRegex(DecodeError, "empty message"):
            decode_message(b"")

    def test_a_second_message_header_is_rejected(self) -> None:
        with self.assertRaisesRegex(DecodeError, "second message header"):
            decode_message(VECTORS["V1"] + VECTORS["V1"][:16])

    def test_a_bad_record_length_is_rejected_never_looped_on(self) -> None:
        for length in (0, 4, 12, 70):
            with self.subTest(length=length):
                with self.assertRaisesRegex(DecodeError, "not a positive multiple of 8"):
                    decode_message(edited_v1(QUOTE_AT, "<H", length))

    def test_a_known_record_shorter_than_documented_is_rejected(self) -> None:
        with self.assertRaisesRegex(DecodeError, "shorter than its documented 72"):
            decode_message(edited_v1(QUOTE_AT, "<H", 64)[: QUOTE_AT + 64])
        with self.assertRaisesRegex(DecodeError, "shorter than its documented 16"):
            decode_message(edited_v1(0, "<H", 8)[:8])

    def test_fields_appended_by_a_later_minor_version_are_skipped(self) -> None:
        v1 = VECTORS["V1"]
        # A 24-byte header and an 80-byte quote, each with 8 bytes appended.
        data = bytearray(v1[:16] + b"\xee" * 8 + v1[16:] + b"\xee" * 8)
        struct.pack_into("<H", data, 0, 24)
        struct.pack_into("<H", data, 24, 80)
        self.assertEqual(decode_message(bytes(data)), decode_message(v1))

    def test_unknown_flag_bits_are_ignored(self) -> None:
        quote = decode_message(edited_v1(QUOTE_AT + 3, "<B", 0xF1)).records[0]
        assert isinstance(quote, Quote)
        self.assertEqual(quote.flags, Flag.SNAPSHOT)
        self.assertEqual(quote.flags.names(), ["snapshot"])

    def test_an_unknown_status_code_is_informational(self) -> None:
        data = bytearray(VECTORS["V4"])
        struct.pack_into("<H", data, 16 + 4, 99)
        self.assertEqual(
            decode_message(bytes(data)).records[0],
            Status(code=99, name="unknown", feed=0, ts=1499697124000000000, detail=1),
        )

    def test_a_malformed_symbol_is_rejected(self) -> None:
        with self.assertRaisesRegex(DecodeError, "malformed symbol"):
            decode_message(edited_v1(QUOTE_AT + 8, "<B", 0xC3))
        with self.assertRaisesRegex(DecodeError, "malformed symbol"):
            decode_message(edited_v1(QUOTE_AT + 8 + 6, "<B", 0x41))
        with self.assertRaisesRegex(DecodeError, "empty symbol"):
            decode_message(edited_v1(QUOTE_AT + 8, "<16s", b""))


class Prices(unittest.TestCase):
    def test_format_price_is_exact_with_no_trailing_zeros_or_exponent(self) -> None:
        cases = [
            (18730000000, "18.73"),
            (-100000, "-0.0001"),
            (993000000000, "993"),
            (0, "0"),
            (1, "0.000000001"),
            (-1, "-0.000000001"),
            (100000000000, "100"),
            (2**63 - 1, "9223372036.854775807"),
            (-(2**63), "-9223372036.854775808"),
        ]
        for units, text in cases:
            with self.subTest(units=units):
                self.assertEqual(format_price(price_from_units(units)), text)


if __name__ == "__main__":
    unittest.main()
