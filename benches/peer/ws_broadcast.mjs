// The peer `quotehub bench` compares the hub with: the Node `ws` broadcast
// server people write by hand. It connects to the bench feed (TCP, 72-byte
// quote records), keeps who subscribed to which symbol, and for every chunk
// read from the feed sends each subscriber one binary message holding its
// records (the hub's 16-byte message header first), so it batches as the
// hub does. Clients subscribe with the hub's request and get an ack.
//
// usage: node ws_broadcast.mjs FEED_HOST:FEED_PORT WS_MODULE_DIR
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
const subscribers = new Map(); // symbol -> Set of sockets

function header() {
  const h = Buffer.alloc(16);
  h.writeUInt16LE(16, 0);
  h[2] = 0x01; // message header
  h[4] = 1; // protocol major version
  h.writeBigUInt64LE(BigInt(Date.now()) * 1000000n, 8);
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
  let rest = Buffer.alloc(0);
  feed.on('data', (chunk) => {
    const data = rest.length ? Buffer.concat([rest, chunk]) : chunk;
    const whole = data.length - (data.length % RECORD);
    const batches = new Map(); // socket -> records
    const head = header();
    for (let at = 0; at < whole; at += RECORD) {
      const record = data.subarray(at, at + RECORD);
      let end = 24;
      while (end > 8 && record[end - 1] === 0) end -= 1;
      const symbol = record.toString('latin1', 8, end);
      const set = subscribers.get(symbol);
      if (!set) continue;
      for (const socket of set) {
        let list = batches.get(socket);
        if (!list) batches.set(socket, (list = [head]));
        list.push(record);
      }
    }
    for (const [socket, list] of batches) {
      if (socket.readyState === 1) socket.send(Buffer.concat(list), { binary: true });
    }
    rest = Buffer.from(data.subarray(whole));
  });
  // The bench ends the peer by closing the feed.
  feed.on('close', () => process.exit(0));
  feed.on('error', (err) => {
    console.error(`peer: feed: ${err.message}`);
    process.exit(1);
  });
});
