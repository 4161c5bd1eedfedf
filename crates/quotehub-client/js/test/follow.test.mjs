// follow() against scripted WebSockets on the JSON sub-protocol: what it
// resumes with, what it hands on across reconnects and sequence spaces, and
// how it waits and gives up.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { follow } from '../follow.mjs';
import { JSON_PROTOCOL } from '../quotehub.mjs';
import { ScriptedWebSocket } from '../test_support/scripted_websocket.mjs';

const URL = 'ws://hub.invalid/v1/quotes';
const EPOCH_A = '9f86d081884c7d65';
const EPOCH_B = '0123456789abcdef';

// A follower whose waits are short and whose jitter is fixed, recording
// everything it reports; `socket` is its first connection, not yet open.
function following(symbols = ['AAPL'], options = {}) {
  const seen = { records: [], subscribed: [], reconnecting: [] };
  const follower = follow(URL, symbols, {
    WebSocket: ScriptedWebSocket,
    protocol: JSON_PROTOCOL,
    backoff: { initialMs: 2, maxMs: 8, maxAttempts: 3 },
    random: () => 0,
    onRecord: (record, { epoch }) =>
      seen.records.push([record.symbol, Number(record.seq), record.flags.reset ? 'reset' : 'live', epoch]),
    onSubscribed: ({ epoch, unseen, resumed }) => seen.subscribed.push({ epoch, unseen, resumed }),
    onReconnecting: ({ attempt, delayMs }) => seen.reconnecting.push([attempt, delayMs]),
    ...options,
  });
  return { follower, seen, socket: ScriptedWebSocket.last };
}

// Opens `socket` and answers its subscribe with an ack of `epoch`; resolves
// with the request text it sent.
async function acknowledge(socket, epoch, extra = {}) {
  socket.open();
  await until(() => socket.sent.length === 1);
  const request = JSON.parse(socket.sent[0]);
  socket.receive(JSON.stringify({ type: 'ack', id: request.id, op: 'subscribe', symbols: request.symbols, epoch, ...extra }));
  return socket.sent[0];
}

// Quotes in the spec's JSON form, one message.
function quotes(...list) {
  const records = list.map(
    ([sym, seq, flags = []]) =>
      `{"type":"quote","sym":"${sym}","seq":${seq},"bp":"1.5","bs":1,"ap":"1.6","as":1,"t":1,"recv_ts":2,"flags":${JSON.stringify(flags)}}`,
  );
  return `{"type":"records","send_ts":3,"records":[${records.join(',')}]}`;
}

// Trades in the spec's JSON form, one message.
function trades(...list) {
  const records = list.map(
    ([sym, seq]) => `{"type":"trade","sym":"${sym}","seq":${seq},"p":"1.5","s":1,"t":1,"recv_ts":2,"flags":[]}`,
  );
  return `{"type":"records","send_ts":3,"records":[${records.join(',')}]}`;
}

// Waits for a condition that the follower's own promises make true.
async function until(condition) {
  for (let turn = 0; turn < 100 && !condition(); turn++) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(condition(), `not met: ${condition}`);
}

test('a duplicate within an epoch is dropped and a reconnect resumes from the last seq and epoch', async () => {
  const { follower, seen, socket } = following();
  assert.equal(await acknowledge(socket, EPOCH_A), '{"op":"subscribe","symbols":["AAPL"],"id":1}');
  socket.receive(quotes(['AAPL', 1, ['snapshot']], ['AAPL', 2], ['AAPL', 2], ['AAPL', 3]));
  const reconnected = ScriptedWebSocket.next();
  socket.close(1001, 'hub shutting down');
  const second = await reconnected;
  assert.equal(
    await acknowledge(second, EPOCH_A),
    `{"op":"subscribe","symbols":["AAPL"],"id":1,"resume":{"AAPL":3},"epoch":"${EPOCH_A}"}`,
  );
  // The hub's history from 3 on: 3 again is no news.
  second.receive(quotes(['AAPL', 3], ['AAPL', 4]));
  assert.deepEqual(seen.records, [
    ['AAPL', 1, 'live', EPOCH_A],
    ['AAPL', 2, 'live', EPOCH_A],
    ['AAPL', 3, 'live', EPOCH_A],
    ['AAPL', 4, 'live', EPOCH_A],
  ]);
  assert.equal(follower.duplicates, 2);
  assert.deepEqual(seen.reconnecting, [[1, 1]], 'the first wait is half of initialMs at the lowest jitter');
  assert.equal(follower.reconnects, 1);
  follower.close();
  await follower.done;
});

test('a follower of some channels names them on every subscribe, the resumed one too', async () => {
  const { follower, seen, socket } = following(['AAPL'], { channels: ['trades'] });
  assert.equal(
    await acknowledge(socket, EPOCH_A),
    '{"op":"subscribe","symbols":["AAPL"],"id":1,"channels":["trades"]}',
  );
  // Trades only: the shared sequence skips the quotes' numbers, which is no loss.
  socket.receive(trades(['AAPL', 2], ['AAPL', 5]));
  const reconnected = ScriptedWebSocket.next();
  socket.close(1001, 'hub shutting down');
  assert.equal(
    await acknowledge(await reconnected, EPOCH_A),
    `{"op":"subscribe","symbols":["AAPL"],"id":1,"channels":["trades"],"resume":{"AAPL":5},"epoch":"${EPOCH_A}"}`,
  );
  assert.deepEqual(seen.records, [
    ['AAPL', 2, 'live', EPOCH_A],
    ['AAPL', 5, 'live', EPOCH_A],
  ]);
  assert.equal(follower.duplicates, 0);
  follower.close();
  await follower.done;
  assert.throws(() => follow(URL, ['AAPL'], { WebSocket: ScriptedWebSocket, channels: [] }), /non-empty array/);
});

test('a new epoch enters through a reset: the old numbers are forgotten, never compared', async () => {
  const { follower, seen, socket } = following(['AAPL', 'MSFT']);
  await acknowledge(socket, EPOCH_A);
  socket.receive(quotes(['AAPL', 40], ['MSFT', 9]));
  const reconnected = ScriptedWebSocket.next();
  socket.close(1006);
  const second = await reconnected;
  assert.match(await acknowledge(second, EPOCH_B), /"resume":\{"AAPL":40,"MSFT":9\},"epoch":"9f86d081884c7d65"/);
  second.receive(quotes(['AAPL', 5, ['snapshot', 'reset']], ['MSFT', 1], ['AAPL', 6]));
  assert.deepEqual(seen.records.slice(2), [
    ['AAPL', 5, 'reset', EPOCH_B],
    ['MSFT', 1, 'live', EPOCH_B],
    ['AAPL', 6, 'live', EPOCH_B],
  ]);
  assert.deepEqual(
    [follower.epoch, follower.epochChanges, follower.resets, follower.duplicates, follower.lastSeq('AAPL')],
    [EPOCH_B, 1, 1, 0, 6n],
  );
  assert.deepEqual(
    seen.subscribed.map(({ epoch, resumed }) => [epoch, resumed]),
    [
      [EPOCH_A, false],
      [EPOCH_B, true],
    ],
  );
  follower.close();
  await follower.done;
});

test('a reset sets a number back within an epoch; a plain record never does', async () => {
  const { follower, seen, socket } = following();
  await acknowledge(socket, EPOCH_A);
  socket.receive(quotes(['AAPL', 10], ['AAPL', 7, ['snapshot']], ['AAPL', 7, ['snapshot', 'reset']], ['AAPL', 8]));
  assert.deepEqual(
    seen.records.map(([, seq, kind]) => [seq, kind]),
    [
      [10, 'live'],
      [7, 'reset'],
      [8, 'live'],
    ],
  );
  follower.close();
  await follower.done;
});

test('the ack names the symbols no feed has sent', async () => {
  const { follower, seen, socket } = following(['AAPL', 'ZZZZ']);
  await acknowledge(socket, EPOCH_A, { unseen: ['ZZZZ'] });
  assert.deepEqual(seen.subscribed, [{ epoch: EPOCH_A, unseen: ['ZZZZ'], resumed: false }]);
  follower.close();
  await follower.done;
});

test('failed attempts wait longer, up to the cap, and end the follower after maxAttempts', async () => {
  const { follower, seen, socket } = following(['AAPL'], { random: () => 0.999 });
  await acknowledge(socket, EPOCH_A);
  let next = ScriptedWebSocket.next();
  socket.close(1006);
  for (let attempt = 0; attempt < 3; attempt++) {
    const refused = await next;
    next = ScriptedWebSocket.next();
    refused.close(1006);
  }
  await assert.rejects(follower.done, /gave up after 3 attempt\(s\) in a row: could not connect/);
  assert.deepEqual(seen.reconnecting, [
    [1, 2],
    [2, 4],
    [3, 8],
  ]);
});

test('a refused subscription, or a first connection that fails, ends the follower at once', async () => {
  const { follower, socket } = following(['A B']);
  socket.open();
  await until(() => socket.sent.length === 1);
  socket.receive('{"type":"error","id":1,"code":"invalid_symbol","message":"invalid symbol \\"A B\\""}');
  await assert.rejects(follower.done, /the hub refused the subscription: invalid_symbol/);

  const unreachable = following();
  unreachable.socket.close(1006);
  await assert.rejects(unreachable.follower.done, /could not connect to ws:\/\/hub.invalid/);
  assert.deepEqual(unreachable.seen.reconnecting, []);
});

test('a normal close by the hub or close() ends following', async () => {
  const { follower, socket } = following();
  await acknowledge(socket, EPOCH_A);
  socket.close(1000);
  await follower.done;

  const waiting = following();
  await acknowledge(waiting.socket, EPOCH_A);
  waiting.socket.close(1006);
  // Closed during the wait to reconnect: no new connection follows.
  waiting.follower.close();
  await waiting.follower.done;
  assert.equal(ScriptedWebSocket.last, waiting.socket);
});
