// The peer `quotehub-bench` compares the hub with: the Node `ws` broadcast
// server people write by hand. It connects to the bench feed and reads the
// same JSON quote lines as the hub, keeps who subscribed to which symbol,
// turns each quote into the hub's 72-byte binary record (exact prices, a
// per-symbol sequence number, its receive time), and for every chunk read
// from the feed sends each subscriber one binary message holding its records
// (the hub's 16-byte message header first), so it batches as the hub does.
// Clients subscribe with the hub's request and get an ack.
//
// usage: node ws_broadcast.mjs FEED_HOST:FEED_PORT WS_PACKAGE_DIR
// prints "listening HOST:PORT" once clients may connect.
import net from 'node:net';
import { createRequire } from 'node:module';
import path from 'node:path';

const [feedAddress, wsFrom] = process.argv.slice(2);
if (!feedAddress || !wsFrom) {
  console.error('usage: node ws_broadcast.mjs FEED_HOST:FEED_PORT WS_MODULE_DIR');
  process.exit(2);
}
// The package directory itself, wherever it was installed.
const { WebSocketServer } = createRequire(import.meta.url)(path.resolve(wsFrom));

const RECORD = 72;
const sequences = new Map(); // symbol -> last sequence number
// Nanoseconds since the epoch from the monotonic clock, anchored once.
const epochBase = BigInt(Date.now()) * 1000000n - process.hrtime.bigint();
const nowNs = () => epochBase + process.hrtime.bigint();

// A decimal string as units of 1e-9, exactly (never through a double).
function units(text) {
  const [whole, fraction = ''] = String(text).split('.');
  return BigInt(whole + fraction.padEnd(9, '0').slice(0, 9));
}

// One JSON quote line as the hub's binary quote record, or null.
function record(line, recvTs) {
  let quote;
  try {
    quote = JSON.parse(line);
  } catch {
    return null;
  }
  if (quote.ev !== 'Q' || typeof quote.sym !== 'string') return null;
  // The 19-digit timestamp does not fit a double: read it from the text.
  const t = /"t":(\d+)/.exec(line);
  if (!t) return null;
  const seq = (sequences.get(quote.sym) ?? 0n) + 1n;
  sequences.set(quote.sym, seq);
  const r = Buffer.alloc(RECORD);
  r.writeUInt16LE(RECORD, 0);
  r[2] = 0x02; // quote
  r.write(quote.sym, 8, 16, 'latin1');
  r.writeBigUInt64LE(seq, 24);
  r.writeBigUInt64LE(BigInt(t[1]), 32);
  r.writeBigUInt64LE(recvTs, 40);
  r.writeBigInt64LE(units(quote.bp), 48);
  r.writeBigInt64LE(units(quote.ap), 56);
  r.writeUInt32LE(quote.bs >>> 0, 64);
  r.writeUInt32LE(quote.as >>> 0, 68);
  return { symbol: quote.sym, bytes: r };
}
const subscribers = new Map(); // symbol -> Set of sockets

function header() {
  const h = Buffer.alloc(16);
  h.writeUInt16LE(16, 0);
  h[2] = 0x01; // message header
  h[4] = 1; // protocol major version
  h.writeBigUInt64LE(nowNs(), 8);
  return h;
}

const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 65536 });
server.on('connection', (socket) => {
  socket._socket.setNoDelay(true);
  const mine = [];
  socket.on('message', (data, isBinary) => {
    if (isBinary) return;
    let request;
    try {
      request = JSON.parse(data.toString());
    } catch {
      socket.send(JSON.stringify({ type: 'error', id: null, code: 'malformed_json', message: 'not JSON' }));
      return;
    }
    const symbols = Array.isArray(request.symbols) ? request.symbols.map(String) : [];
    for (const symbol of symbols) {
      if (!subscribers.has(symbol)) subscribers.set(symbol, new Set());
      subscribers.get(symbol).add(socket);
      mine.push(symbol);
    }
    socket.send(JSON.stringify({ type: 'ack', id: request.id ?? null, op: 'subscribe', symbols }));
  });
  socket.on('close', () => {
    for (const symbol of mine) subscribers.get(symbol)?.delete(socket);
  });
  socket.on('error', () => {});
});

server.on('listening', () => {
  const { address, port } = server.address();
  const [host, feedPort] = feedAddress.split(':');
  const feed = net.connect({ host, port: Number(feedPort) }, () => {
    feed.setNoDelay(true);
    process.stdout.write(`listening ${address}:${port}\n`);
  });
  let rest = '';
  feed.setEncoding('latin1');
  feed.on('data', (chunk) => {
    const text = rest + chunk;
    const lines = text.split('\n');
    rest = lines.pop();
    const recvTs = nowNs();
    const batches = new Map(); // socket -> records
    const head = header();
    for (const line of lines) {
      const quote = record(line, recvTs);
      if (!quote) continue;
      const set = subscribers.get(quote.symbol);
      if (!set) continue;
      for (const socket of set) {
        let list = batches.get(socket);
        if (!list) batches.set(socket, (list = [head]));
        list.push(quote.bytes);
      }
    }
    for (const [socket, list] of batches) {
      if (socket.readyState === 1) socket.send(Buffer.concat(list), { binary: true });
    }
  });
  // The bench ends the peer by closing the feed.
  feed.on('close', () => process.exit(0));
  feed.on('error', (err) => {
    console.error(`peer: feed: ${err.message}`);
    process.exit(1);
  });
});
