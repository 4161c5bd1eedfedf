// The decoder against the test vectors of SPEC.md, with every field checked
// against the values the spec's vector descriptions give, plus the
// versioning rules and malformed input.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { decodeMessage, formatPrice } from '../quotehub.mjs';
import { specVectors } from '../test_support/spec.mjs';

const vectors = specVectors();

const NO_FLAGS = { snapshot: false, conflated: false, replayed: false, reset: false };

// V2..V4 do not describe their message header; their bytes are V1's.
const SEND_TS = 1499697123000000000n;

// V1's quote, which V3 and V4 repeat with other flags.
const goodQuote = (changes = {}) => ({
  type: 'quote',
  symbol: 'GOOD',
  seq: 1n,
  eventTs: 1499697120000000000n,
  recvTs: 1499697120000005000n,
  bidPrice: '18.73',
  bidSize: 993,
  askPrice: '18.75',
  askSize: 297,
  conflated: 0,
  flags: NO_FLAGS,
  ...changes,
});

const expected = {
  V1: [goodQuote()],
  V2: [
    {
      type: 'quote',
      symbol: 'BRK.B',
      seq: 42n,
      eventTs: 1499697121000000001n,
      recvTs: 1499697121000100000n,
      bidPrice: '-0.0001',
      bidSize: 0,
      askPrice: '165.1234',
      askSize: 4294967295,
      conflated: 0,
      flags: { ...NO_FLAGS, snapshot: true },
    },
    {
      type: 'trade',
      symbol: 'AAPL',
      seq: 7n,
      eventTs: 1499697122500000000n,
      recvTs: 1499697122500004000n,
      price: '148.91',
      size: 283,
      conflated: 0,
      flags: { ...NO_FLAGS, replayed: true },
    },
  ],
  V3: [
    { type: 'unknown', rtype: 0x7f, length: 8 },
    goodQuote({ conflated: 3, flags: { ...NO_FLAGS, conflated: true } }),
  ],
  V4: [
    { type: 'status', code: 2, name: 'replay_looped', feed: 0, ts: 1499697124000000000n, detail: 1n },
    goodQuote({ flags: { ...NO_FLAGS, snapshot: true, reset: true } }),
  ],
  V5: [
    {
      type: 'bar',
      symbol: 'AAPL',
      seq: 1n,
      interval: '1s',
      intervalS: 1,
      startTs: 1499697122000000000n,
      recvTs: 1499697123000002000n,
      open: '148.9',
      high: '148.95',
      low: '148.88',
      close: '148.91',
      vwap: '148.920980966',
      volume: 683n,
      tradeCount: 4,
      conflated: 0,
      flags: NO_FLAGS,
    },
    {
      type: 'bar',
      symbol: 'BRK.B',
      seq: 12n,
      interval: '1m',
      intervalS: 60,
      startTs: 1499697060000000000n,
      recvTs: 1499697120000003000n,
      open: '165.1234',
      high: '165.1234',
      low: '165.1234',
      close: '165.1234',
      vwap: '165.1234',
      volume: 7n,
      tradeCount: 1,
      conflated: 0,
      flags: { ...NO_FLAGS, snapshot: true, replayed: true },
    },
  ],
  V6: [
    {
      type: 'bbo',
      symbol: 'GOOD',
      seq: 5n,
      eventTs: 1499697120000000000n,
      recvTs: 1499697120000005000n,
      bidPrice: '18.73',
      bidSize: 1293n,
      bidFeed: 1,
      bidFeeds: 2,
      askPrice: '18.75',
      askSize: 297n,
      askFeed: 2,
      askFeeds: 1,
      conflated: 0,
      flags: NO_FLAGS,
    },
    {
      type: 'bbo',
      symbol: 'ZVZZT',
      seq: 1n,
      eventTs: 1499697121000000000n,
      recvTs: 1499697121000007000n,
      bidPrice: '0',
      bidSize: 0n,
      bidFeed: 0,
      bidFeeds: 0,
      askPrice: '10.01',
      askSize: 4294967296n,
      askFeed: 3,
      askFeeds: 1,
      conflated: 0,
      flags: { ...NO_FLAGS, snapshot: true },
    },
  ],
};

// V5 and V6 hold records of minor version 1, and their headers say so.
const MINOR = { V5: 1, V6: 1 };

const DOCUMENTED_LENGTH = { quote: 72, trade: 64, status: 24, bar: 104, bbo: 88 };

test('SPEC.md holds exactly the vectors V1..V6', () => {
  assert.deepEqual([...vectors.keys()].sort(), ['V1', 'V2', 'V3', 'V4', 'V5', 'V6']);
});

for (const [name, records] of Object.entries(expected)) {
  test(`${name} decodes to the values its description gives`, () => {
    const message = decodeMessage(vectors.get(name));
    assert.deepEqual(message, { version: 1, minor: MINOR[name] ?? 0, sendTs: SEND_TS, records });
  });

  test(`${name}: every truncation decodes to a prefix or throws a plain Error`, { timeout: 10_000 }, () => {
    const bytes = vectors.get(name);
    // Truncating at a record boundary leaves a shorter, valid message.
    const boundaries = new Set([16]);
    let end = 16;
    for (const record of records) {
      end += record.type === 'unknown' ? record.length : DOCUMENTED_LENGTH[record.type];
      boundaries.add(end);
    }
    assert.equal(end, bytes.length, 'the records fill the vector');
    for (let length = 0; length < bytes.length; length++) {
      const truncated = bytes.slice(0, length);
      if (boundaries.has(length)) {
        const message = decodeMessage(truncated);
        assert.deepEqual(message.records, records.slice(0, message.records.length), `prefix of ${length} bytes`);
      } else {
        assert.throws(
          () => decodeMessage(truncated),
          (error) => error.constructor === Error && error.message.length > 0,
          `prefix of ${length} bytes`,
        );
      }
    }
  });
}

test("V5's VWAP is its trades' exact VWAP rounded to 1e-9, halves away from zero", () => {
  // The trades SPEC.md's V5 description lists, as (price in 1e-9 units, size).
  const trades = [
    [148_900_000_000n, 100n],
    [148_950_000_000n, 250n],
    [148_880_000_000n, 50n],
    [148_910_000_000n, 283n],
  ];
  const notional = trades.reduce((sum, [price, size]) => sum + price * size, 0n);
  const volume = trades.reduce((sum, [, size]) => sum + size, 0n);
  // Half away from zero for a positive notional: add half the divisor, then truncate.
  const units = (2n * notional + volume) / (2n * volume);
  const [bar] = decodeMessage(vectors.get('V5')).records;
  assert.equal(bar.vwap, formatPrice(units));
  assert.equal(bar.volume, volume);
});

// Returns a copy of V1 with `edit` applied to its bytes.
function editedV1(edit) {
  const bytes = vectors.get('V1').slice();
  edit(bytes, new DataView(bytes.buffer));
  return bytes;
}

// V1's 72-byte quote, starting at byte 16.
const QUOTE_AT = 16;

test('a major version other than 1 is rejected', () => {
  for (const major of [0, 2, 255]) {
    const bytes = editedV1((b) => {
      b[4] = major;
    });
    assert.throws(() => decodeMessage(bytes), new RegExp(`major version ${major}\\b`));
  }
});

test('any minor version of major 1 is accepted', () => {
  const message = decodeMessage(
    editedV1((b) => {
      b[5] = 7;
    }),
  );
  assert.equal(message.minor, 7);
  assert.deepEqual(message.records, expected.V1);
});

test('a message must start with a message header', () => {
  assert.throws(() => decodeMessage(vectors.get('V1').slice(QUOTE_AT)), /not a message header/);
  assert.throws(() => decodeMessage(new Uint8Array(0)), /empty message/);
});

test('a second message header is rejected', () => {
  const v1 = vectors.get('V1');
  const bytes = new Uint8Array(v1.length + 16);
  bytes.set(v1);
  bytes.set(v1.subarray(0, 16), v1.length);
  assert.throws(() => decodeMessage(bytes), /second message header/);
});

test('a record length of 0, below 8 or not a multiple of 8 is rejected, never looped on', () => {
  for (const length of [0, 4, 12, 70]) {
    const bytes = editedV1((_, view) => view.setUint16(QUOTE_AT, length, true));
    assert.throws(() => decodeMessage(bytes), /not a positive multiple of 8/, `length ${length}`);
  }
});

test('a known record shorter than documented is rejected', () => {
  const bytes = editedV1((_, view) => view.setUint16(QUOTE_AT, 64, true));
  assert.throws(() => decodeMessage(bytes.slice(0, QUOTE_AT + 64)), /shorter than its documented 72/);
  const header = editedV1((_, view) => view.setUint16(0, 8, true));
  assert.throws(() => decodeMessage(header.slice(0, 8)), /shorter than its documented 16/);
});

test('fields appended to known records by a later minor version are skipped', () => {
  const v1 = vectors.get('V1');
  // A 24-byte header and an 80-byte quote, each with 8 bytes of 0xee appended.
  const bytes = new Uint8Array(v1.length + 16).fill(0xee);
  bytes.set(v1.subarray(0, 16));
  bytes.set(v1.subarray(16), 24);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, 24, true);
  view.setUint16(24, 80, true);
  assert.deepEqual(decodeMessage(bytes), decodeMessage(v1));
});

test('unknown flag bits are ignored and known ones still read', () => {
  const message = decodeMessage(
    editedV1((b) => {
      b[QUOTE_AT + 3] = 0xf1;
    }),
  );
  assert.deepEqual(message.records[0].flags, { ...NO_FLAGS, snapshot: true });
});

test('an unknown status code is informational', () => {
  const bytes = vectors.get('V4').slice();
  new DataView(bytes.buffer).setUint16(16 + 4, 99, true);
  const status = decodeMessage(bytes).records[0];
  assert.deepEqual(status, { ...expected.V4[0], code: 99, name: 'unknown' });
});

test('a malformed symbol field is rejected', () => {
  const nonAscii = editedV1((b) => {
    b[QUOTE_AT + 8] = 0xc3;
  });
  assert.throws(() => decodeMessage(nonAscii), /malformed symbol/);
  const afterPadding = editedV1((b) => {
    b[QUOTE_AT + 8 + 6] = 0x41;
  });
  assert.throws(() => decodeMessage(afterPadding), /malformed symbol/);
  const empty = editedV1((b) => b.fill(0, QUOTE_AT + 8, QUOTE_AT + 24));
  assert.throws(() => decodeMessage(empty), /empty symbol/);
});

test('accepts an ArrayBuffer, a Uint8Array and a Node Buffer sliced from a larger one', () => {
  const v2 = vectors.get('V2');
  const want = decodeMessage(v2);
  assert.deepEqual(decodeMessage(v2.buffer.slice(v2.byteOffset, v2.byteOffset + v2.byteLength)), want);
  const pool = Buffer.alloc(v2.length + 13, 0xab);
  pool.set(v2, 5);
  assert.deepEqual(decodeMessage(pool.subarray(5, 5 + v2.length)), want);
  assert.throws(
    () => decodeMessage('10 00 01 00'),
    (error) => error.constructor === Error && /ArrayBuffer/.test(error.message),
  );
});

test('formatPrice writes exact decimals with no trailing zeros and no exponent', () => {
  const cases = [
    [18730000000n, '18.73'],
    [-100000n, '-0.0001'],
    [993000000000n, '993'],
    [0n, '0'],
    [1n, '0.000000001'],
    [-1n, '-0.000000001'],
    [165123400000n, '165.1234'],
    [9223372036854775807n, '9223372036.854775807'],
    [-9223372036854775808n, '-9223372036.854775808'],
    [100000000000n, '100'],
  ];
  for (const [units, text] of cases) assert.equal(formatPrice(units), text, `${units}n`);
  assert.throws(
    () => formatPrice(18.73),
    (error) => error.constructor === Error && /BigInt/.test(error.message),
  );
});
