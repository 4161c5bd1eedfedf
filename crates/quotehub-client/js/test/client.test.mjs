// QuotehubClient against a scripted WebSocket: the request texts it sends,
// how it pairs replies with requests, and that both sub-protocols deliver the
// same records (the spec's JSON-form example describes V1's quote, V2's
// trade and V4's status).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { BINARY_PROTOCOL, JSON_PROTOCOL, QuotehubClient, decodeMessage, replayUrl } from '../quotehub.mjs';
import { ScriptedWebSocket } from '../test_support/scripted_websocket.mjs';
import { specJsonChannelExamples, specJsonExample, specVectors } from '../test_support/spec.mjs';

const vectors = specVectors();

async function connected(protocol = BINARY_PROTOCOL) {
  const client = new QuotehubClient('ws://hub.invalid/v1/quotes', { WebSocket: ScriptedWebSocket, protocol });
  const opening = client.connect();
  const socket = ScriptedWebSocket.last;
  socket.open();
  await opening;
  return { client, socket };
}

function arrayBufferOf(bytes) {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
}

test('connect asks for the sub-protocol and ArrayBuffer messages', async () => {
  const { socket } = await connected();
  assert.equal(socket.url, 'ws://hub.invalid/v1/quotes');
  assert.equal(socket.requested, BINARY_PROTOCOL);
  assert.equal(socket.binaryType, 'arraybuffer');
});

test('connect rejects when the connection closes before it opens', async () => {
  const client = new QuotehubClient('ws://hub.invalid/v1/quotes', { WebSocket: ScriptedWebSocket });
  const opening = client.connect();
  ScriptedWebSocket.last.close(1006);
  await assert.rejects(opening, /could not connect to ws:\/\/hub.invalid\/v1\/quotes \(close code 1006\)/);
});

test('connect rejects when the hub picks another sub-protocol', async () => {
  const client = new QuotehubClient('ws://hub.invalid/v1/quotes', { WebSocket: ScriptedWebSocket });
  const opening = client.connect();
  ScriptedWebSocket.last.open(JSON_PROTOCOL);
  await assert.rejects(opening, /chose sub-protocol "quotehub.v1.json"/);
});

test('no WebSocket implementation is a clear error', () => {
  assert.throws(() => new QuotehubClient('ws://x', { WebSocket: undefined }), /no WebSocket implementation/);
});

test('subscribe and unsubscribe send the spec request texts and resolve with the ack', async () => {
  const { client, socket } = await connected();
  const subscribing = client.subscribe(['AAPL', 'MSFT']);
  assert.deepEqual(socket.sent, ['{"op":"subscribe","symbols":["AAPL","MSFT"],"id":1}']);
  const ack = { type: 'ack', id: 1, op: 'subscribe', symbols: ['AAPL', 'MSFT'] };
  socket.receive(JSON.stringify(ack));
  assert.deepEqual(await subscribing, ack);

  const unsubscribing = client.unsubscribe(['MSFT']);
  assert.equal(socket.sent[1], '{"op":"unsubscribe","symbols":["MSFT"],"id":2}');
  socket.receive('{"type":"ack","id":2,"op":"unsubscribe","symbols":["MSFT"]}');
  assert.equal((await unsubscribing).op, 'unsubscribe');
});

test('subscribe and unsubscribe name channels when given, as SPEC.md writes them', async () => {
  const { client, socket } = await connected();
  const subscribing = client.subscribe(['AAPL'], { channels: ['trades', 'bars.1m'] });
  assert.equal(socket.sent[0], '{"op":"subscribe","symbols":["AAPL"],"id":1,"channels":["trades","bars.1m"]}');
  socket.receive('{"type":"ack","id":1,"op":"subscribe","symbols":["AAPL"]}');
  await subscribing;
  const unsubscribing = client.unsubscribe(['AAPL'], { channels: ['trades'] });
  assert.equal(socket.sent[1], '{"op":"unsubscribe","symbols":["AAPL"],"id":2,"channels":["trades"]}');
  socket.receive('{"type":"ack","id":2,"op":"unsubscribe","symbols":["AAPL"]}');
  await unsubscribing;
  // TC0: empty. TC1: not an array. TC2: not names. Nothing is sent.
  for (const channels of [[], 'trades', [1]]) {
    await assert.rejects(client.subscribe(['AAPL'], { channels }), /channels must be a non-empty array/);
  }
  assert.equal(socket.sent.length, 2);
});

test('resume takes the BigInt sequence numbers records carry', async () => {
  const { client, socket } = await connected();
  const subscribing = client.subscribe(['AAPL', 'BRK.B'], { resume: { AAPL: 4182n, 'BRK.B': 9007199254740993n } });
  assert.equal(
    socket.sent[0],
    '{"op":"subscribe","symbols":["AAPL","BRK.B"],"id":1,"resume":{"AAPL":4182,"BRK.B":9007199254740993}}',
  );
  socket.receive('{"type":"ack","id":1,"op":"subscribe","symbols":["AAPL","BRK.B"]}');
  await subscribing;
  await assert.rejects(client.subscribe(['AAPL'], { resume: { AAPL: -1 } }), /non-negative integer/);
});

test('an API key goes in the Authorization header, never the URL', async () => {
  const client = new QuotehubClient('ws://hub.invalid/v1/quotes', { WebSocket: ScriptedWebSocket, apiKey: 's3cret' });
  const opening = client.connect();
  const socket = ScriptedWebSocket.last;
  assert.deepEqual(socket.options, { headers: { Authorization: 'Bearer s3cret' } });
  assert.equal(socket.url, 'ws://hub.invalid/v1/quotes');
  socket.open();
  await opening;
  assert.throws(() => new QuotehubClient('ws://h/v1/quotes', { WebSocket: ScriptedWebSocket, apiKey: '' }), /apiKey/);
});

test('the ack names the sequence space, and a resume says which space its numbers are from', async () => {
  const { client, socket } = await connected();
  assert.equal(client.epoch, null);
  const first = client.subscribe(['AAPL']);
  socket.receive('{"type":"ack","id":1,"op":"subscribe","symbols":["AAPL"],"epoch":"9f86d081884c7d65"}');
  assert.equal((await first).epoch, '9f86d081884c7d65');
  assert.equal(client.epoch, '9f86d081884c7d65');
  const resuming = client.subscribe(['AAPL'], { resume: { AAPL: 41n }, epoch: client.epoch });
  assert.equal(
    socket.sent[1],
    '{"op":"subscribe","symbols":["AAPL"],"id":2,"resume":{"AAPL":41},"epoch":"9f86d081884c7d65"}',
  );
  socket.receive('{"type":"ack","id":2,"op":"subscribe","symbols":["AAPL"],"epoch":"0123456789abcdef"}');
  await resuming;
  assert.equal(client.epoch, '0123456789abcdef', 'a restarted hub: another space');
  await assert.rejects(client.subscribe(['AAPL'], { resume: { AAPL: 1 }, epoch: 42 }), /16 hex digits/);
});

test('onAck runs before the records that follow the ack, in hub order', async () => {
  const { client, socket } = await connected(JSON_PROTOCOL);
  const order = [];
  client.onAck((ack) => order.push(`ack ${ack.id}`));
  client.onRecord((record) => order.push(record.type));
  const subscribing = client.subscribe(['AAPL']);
  socket.receive('{"type":"ack","id":1,"op":"subscribe","symbols":["AAPL"],"epoch":"9f86d081884c7d65"}');
  socket.receive(specJsonExample());
  assert.deepEqual(order, ['ack 1', 'quote', 'trade', 'status'], 'all before the promise continuation runs');
  await subscribing;
});

test('an error reply rejects with its code and message and the connection carries on', async () => {
  const { client, socket } = await connected();
  const subscribing = client.subscribe(['A B']);
  socket.receive('{"type":"error","id":1,"code":"invalid_symbol","message":"invalid symbol \\"A B\\": space"}');
  await assert.rejects(subscribing, (error) => {
    assert.equal(error.code, 'invalid_symbol');
    assert.equal(error.message, 'invalid symbol "A B": space');
    return true;
  });
  const next = client.subscribe(['AAPL']);
  socket.receive('{"type":"ack","id":2,"op":"subscribe","symbols":["AAPL"]}');
  assert.equal((await next).id, 2);
});

test('binary messages reach onRecord in order with their send_ts', async () => {
  const { client, socket } = await connected();
  const seen = [];
  client.onRecord((record, sendTs) => seen.push([record, sendTs]));
  for (const name of ['V2', 'V3']) socket.receive(arrayBufferOf(vectors.get(name)));
  const want = ['V2', 'V3'].flatMap((name) => {
    const message = decodeMessage(vectors.get(name));
    return message.records.map((record) => [record, message.sendTs]);
  });
  assert.deepEqual(seen, want);
});

test('the JSON sub-protocol delivers the same records as the binary one', async () => {
  const { client, socket } = await connected(JSON_PROTOCOL);
  const seen = [];
  client.onRecord((record, sendTs) => seen.push([record, sendTs]));
  socket.receive(specJsonExample());
  const [quote] = decodeMessage(vectors.get('V1')).records;
  const [, trade] = decodeMessage(vectors.get('V2')).records;
  const [status] = decodeMessage(vectors.get('V4')).records;
  const sendTs = 1499697123000000000n;
  assert.deepEqual(seen, [
    [quote, sendTs],
    [trade, sendTs],
    [status, sendTs],
  ]);
});

test('bars and BBOs in the JSON sub-protocol equal their binary vectors', async () => {
  const { client, socket } = await connected(JSON_PROTOCOL);
  const seen = [];
  client.onRecord((record, sendTs) => seen.push([record, sendTs]));
  // The spec's examples are V5's first bar and V6's first BBO.
  const examples = specJsonChannelExamples();
  assert.equal(examples.length, 2);
  socket.receive(`{"type":"records","send_ts":1499697123000000000,"records":[${examples.join(',')}]}`);
  const [bar] = decodeMessage(vectors.get('V5')).records;
  const [bbo] = decodeMessage(vectors.get('V6')).records;
  const sendTs = 1499697123000000000n;
  assert.deepEqual(seen, [
    [bar, sendTs],
    [bbo, sendTs],
  ]);
});

test('a malformed message closes the connection, rejects what is pending and tells onClose why', async () => {
  const { client, socket } = await connected();
  const closes = [];
  client.onClose((closed) => closes.push(closed));
  const subscribing = client.subscribe(['AAPL']);
  socket.receive(arrayBufferOf(vectors.get('V1').slice(0, 20)));
  await assert.rejects(subscribing, /truncated message/);
  assert.equal(closes.length, 1);
  assert.match(closes[0].error.message, /truncated message/);
});

test('a close by the hub reaches onClose and rejects pending requests', async () => {
  const { client, socket } = await connected();
  const closes = [];
  client.onClose((closed) => closes.push(closed));
  const subscribing = client.subscribe(['AAPL']);
  socket.close(1001, 'shutting down');
  await assert.rejects(subscribing, /connection closed \(code 1001: shutting down\)/);
  assert.deepEqual(closes, [{ code: 1001, reason: 'shutting down' }]);
  await assert.rejects(client.subscribe(['AAPL']), /not open/);
});

test('replayUrl keeps the hub and encodes the session parameters', () => {
  assert.equal(
    replayUrl('ws://127.0.0.1:8080/v1/quotes?x=1', 'bundled', {
      speed: 10,
      from: '2026-11-20T09:31:00+05:00',
      symbols: ['AAPL', 'BRK.B'],
    }),
    'ws://127.0.0.1:8080/v1/replay?feed=bundled&speed=10&from=2026-11-20T09%3A31%3A00%2B05%3A00&symbols=AAPL%2CBRK.B',
  );
  assert.equal(replayUrl('wss://hub.example/', 'iex', { symbols: [], loop: true }), 'wss://hub.example/v1/replay?feed=iex&loop=true');
});
