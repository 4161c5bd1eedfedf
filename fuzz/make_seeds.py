#!/usr/bin/env python3
"""Writes the committed seed inputs in fuzz/seeds/<target>/ (a few small
files per target). Run from anywhere: `python3 fuzz/make_seeds.py`.

Sources: the test vectors and requests of crates/quotehub-proto/SPEC.md, lines
of feeds/us-equities-2026-11-20.jsonl, and synthetic IEX TOPS pcap files built
here byte by byte with the layout of crates/quotehub-feed/src/iex/tests.rs.
Nothing is copied from outside the repository. The output is deterministic
(gzip without a timestamp), so rerunning it changes no file.
"""

import gzip
import re
import struct
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
SEEDS = FUZZ / "seeds"


def write(target, name, data):
    directory = SEEDS / target
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (directory / name).write_bytes(data)


# ---------------------------------------------------------------- binary_message

SPEC = (ROOT / "crates/quotehub-proto/SPEC.md").read_text()
VECTORS = {
    match.group(1): bytes.fromhex(match.group(2).replace("\n", " "))
    for match in re.finditer(r"### (V\d)[^\n]*\n\n```hex\n(.*?)```", SPEC, re.S)
}
assert sorted(VECTORS) == ["V1", "V2", "V3", "V4", "V5", "V6"], sorted(VECTORS)
for name, message in VECTORS.items():
    write("binary_message", f"spec_{name.lower()}.bin", message)
V1 = VECTORS["V1"]
HEADER, QUOTE = V1[:16], V1[16:88]
# A longer quote (a newer minor version appending 8 bytes) after a longer header.
longer_header = struct.pack("<HBBBBH", 24, 1, 0, 1, 3, 0) + HEADER[8:] + bytes(8)
longer_quote = struct.pack("<H", 80) + QUOTE[2:] + b"appended"
write("binary_message", "minor_version_longer_records.bin", longer_header + longer_quote)
# Malformed: a record cut short (the quote runs past the message's end).
write("binary_message", "truncated_quote.bin", V1[:-8])
# A bar record (minor 1) cut short, and a BBO declared 8 bytes shorter than its layout.
write("binary_message", "truncated_bar.bin", VECTORS["V5"][:-8])
short_bbo = bytearray(VECTORS["V6"][:16 + 80])
struct.pack_into("<H", short_bbo, 16, 80)
write("binary_message", "short_bbo.bin", bytes(short_bbo))

# ---------------------------------------------------------------- control_request

requests = re.search(r"## Requests\n\n```json\n(.*?)```", SPEC, re.S).group(1).splitlines()
assert len(requests) == 6, requests
for index, request in enumerate(requests, 1):
    write("control_request", f"spec_request_{index}.json", request)
write("control_request", "bad_symbol.json", '{"op":"subscribe","symbols":["A B"],"id":5}')
write("control_request", "bad_resume.json", '{"op":"unsubscribe","symbols":["A"],"resume":{"A":-1},"id":"x"}')
write("control_request", "policy.json", '{"op":"subscribe","symbols":["*","BRK.B"],"policy":"conflate","id":"c-9"}')
write("control_request", "not_json.txt", b'{"op":"subscribe","symbols":["\xff\xfe"')
write("control_request", "unknown_channel.json", '{"op":"subscribe","symbols":["A"],"channels":["trades","bars.5m"],"id":8}')
write("control_request", "channels_not_strings.json", '{"op":"unsubscribe","symbols":["*"],"channels":["bbo",7],"id":"u"}')

# ---------------------------------------------------------------- json_feed_line

with open(ROOT / "feeds/us-equities-2026-11-20.jsonl", "rb") as feed:
    lines = [feed.readline().rstrip(b"\n") for _ in range(40)]
quote_line = lines[0]
trade_line = next(line for line in lines if b'"ev":"T"' in line)
write("json_feed_line", "feed_quote.jsonl", quote_line)
write("json_feed_line", "feed_trade.jsonl", trade_line)
write("json_feed_line", "feed_three_lines.jsonl", b"\n".join(lines[1:4]))
write(
    "json_feed_line",
    "string_prices_escapes.jsonl",
    r'{"note":"a\"1,2\\","ev":"Q","sym":"BRK.B","bp":"-0.0001","bs":0,"ap":"9223372036.854775807","as":4294967295,"t":1499697120000001}',
)
write("json_feed_line", "truncated.jsonl", quote_line[: len(quote_line) // 2])
write(
    "json_feed_line",
    "exponent_and_nested.jsonl",
    b'{"ev":"Q","sym":"A","bp":1e3,"bs":1,"ap":1,"as":1,"t":1700000000000}\n'
    b'{"ev":"T","sym":"A","p":1,"s":1,"c":[1,2],"t":1700000000000}',
)

# ---------------------------------------------------------------- iex_pcap

TS = 1_499_697_227_199_519_142


def padded(symbol):
    return symbol.encode().ljust(8, b" ")


def quote_msg(symbol, bid_size, bid_price, ask_price, ask_size):
    return b"Q\0" + struct.pack("<q", TS) + padded(symbol) + struct.pack("<Iqq I", bid_size, bid_price, ask_price, ask_size)


def trade_msg(symbol, size, price):
    return b"T\0" + struct.pack("<q", TS) + padded(symbol) + struct.pack("<Iqq", size, price, 42)


def system_event():
    return b"SO" + struct.pack("<q", TS)


def segment(first_seq, messages):
    payload = b"".join(struct.pack("<H", len(m)) + m for m in messages)
    header = struct.pack("<BBHIIHHqqq", 1, 0, 0x8003, 1, 1_137_508_352, len(payload), len(messages), 0, first_seq, TS)
    return header + payload


def ipv4_udp(payload):
    total = 20 + 8 + len(payload)
    ip = struct.pack(">BBH", 0x45, 0, total) + bytes([0, 0, 0x40, 0, 64, 17, 0, 0]) + bytes([23, 226, 155, 132, 233, 215, 21, 4])
    return ip + struct.pack(">HHHH", 10378, 10378, 8 + len(payload), 0) + payload


def ethernet(payload):
    return bytes([0x01, 0x00, 0x5E, 0x57, 0x15, 0x04, 0x00, 0x1E, 0x67, 0x9F, 0xC8, 0xEF, 0x08, 0x00]) + ipv4_udp(payload)


def pcap(frames, big_endian=False):
    e = ">" if big_endian else "<"
    out = struct.pack(e + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for frame in frames:
        out += struct.pack(e + "IIII", 1_499_697_155, 434_080, len(frame), len(frame)) + frame
    return out


def pcapng_block(e, block_type, body):
    body += bytes(-len(body) % 4)
    total = len(body) + 12
    return struct.pack(e + "II", block_type, total) + body + struct.pack(e + "I", total)


def pcapng(frames, big_endian=True):
    e = ">" if big_endian else "<"
    out = pcapng_block(e, 0x0A0D0D0A, struct.pack(e + "IHH", 0x1A2B3C4D, 1, 0) + b"\xff" * 8)
    out += pcapng_block(e, 1, struct.pack(e + "HHI", 1, 0, 0) + struct.pack(e + "HH", 9, 1) + bytes([9, 0, 0, 0]) + bytes(4))
    for index, frame in enumerate(frames):
        if index % 2 == 0:
            body = struct.pack(e + "IIIII", 0, 349_175, 1_234_567, len(frame), len(frame)) + frame
            out += pcapng_block(e, 6, body)
        else:
            out += pcapng_block(e, 3, struct.pack(e + "I", len(frame)) + frame)
    return out


frames = [
    ethernet(segment(1, [system_event(), quote_msg("ZIEXT", 100, 991_500, 992_500, 200)])),
    ethernet(segment(3, [trade_msg("ZIEXT", 50, 992_000), quote_msg("BRK.B", 0, 0, 1_651_234, 7)])),
    # The same segment again, as when both redundant feeds were captured.
    ethernet(segment(3, [trade_msg("ZIEXT", 50, 992_000), quote_msg("BRK.B", 0, 0, 1_651_234, 7)])),
]
write("iex_pcap", "pcap_le_ethernet.pcap", pcap(frames))
write("iex_pcap", "pcapng_be_enhanced_simple.pcapng", pcapng(frames))
write("iex_pcap", "pcap_be.pcap.gz", gzip.compress(pcap(frames[:2], big_endian=True), mtime=0))
damaged = frames[1][:-5]  # the datagram is cut inside its last message
write("iex_pcap", "damaged_segment.pcap", pcap([frames[0], damaged]))

# ---------------------------------------------------------------- http_head

write(
    "http_head",
    "websocket_upgrade.http",
    "GET /v1/quotes HTTP/1.1\r\nHost: 127.0.0.1:9001\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: quotehub.v1.json, quotehub.v1.binary\r\n\r\n",
)
write("http_head", "sse_with_rest.http", b"GET /v1/sse?symbols=AAPL,MSFT HTTP/1.1\r\nHost: a\r\nAccept: text/event-stream\r\n\r\n\x81\x85extra")
write("http_head", "bare_lf.http", "HEAD / HTTP/1.0\nX-Weird:  spaced value \n\n")
write("http_head", "tls_hello.bin", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n")
write("http_head", "unfinished.http", "GET /board HTTP/1.1\r\nHost: a\r\n")
# Larger than MAX_HEAD_BYTES (16 KiB) and never complete: the TooLarge path.
write("http_head", "oversized.http", "GET / HTTP/1.1\r\nX-Padding: " + "a" * (16 * 1024) + "\r\n")
