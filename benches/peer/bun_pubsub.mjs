// The strongest peer `quotehub-bench` compares the hub with: Bun's native
// WebSocket pub/sub (`Bun.serve`, uWebSockets inside), written the way a
// speed-minded user writes it. Each client's subscription is
// `ws.subscribe(symbol)` per symbol; for every chunk read from the bench
// feed, the quotes of each symbol become the hub's 72-byte binary records
// (exact prices, a per-symbol sequence number, the receive time) behind the
// hub's 16-byte message header, and go out with one `server.publish(symbol,
// message)` per symbol: uWebSockets does the fan-out, the per-socket
// buffering and the writes. Clients subscribe with the hub's request and get
// the hub's ack, as with the Node `ws` peer (ws_broadcast.mjs).
//
// usage: bun bun_pubsub.mjs FEED_HOST:FEED_PORT
// prints "listening HOST:PORT" once clients may connect.

const [feedAddress] = process.argv.slice(2);
if (!feedAddress) {
  console.error('usage: bun bun_pubsub.mjs FEED_HOST:FEED_PORT');
  process.exit(2);
}

const RECORD = 72;
const HEADER = 16;
// Most bytes a socket may have queued before uWebSockets skips publishes to
// it (Bun's default is 16 MiB); the hub's per-client budget is of this order.
const BACKPRESSURE_LIMIT = 4 * 1024 * 1024;
const sequences = new Map(); // symbol -> last sequence number
// Nanoseconds since the epoch from the monotonic clock, anchored once.
const epochBase = BigInt(Date.now()) * 1000000n - process.hrtime.bigint();
const nowNs = () => epochBase + process.hrtime.bigint();

// A decimal string as units of 1e-9, exactly (never through a double).
function units(text) {
  const [whole, fraction = ''] = String(text).split('.');
  return BigInt(whole + fraction.padEnd(9, '0').slice(0, 9));
}

// Writes one JSON quote line as the hub's binary quote record into `out` at
// `at`; returns the symbol, or null for a line that is not a quote.
function record(line, recvTs, out, at) {
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
  out.fill(0, at, at + RECORD);
  out.writeUInt16LE(RECORD, at);
  out[at + 2] = 0x02; // quote
  out.write(quote.sym, at + 8, 16, 'latin1');
  out.writeBigUInt64LE(seq, at + 24);
  out.writeBigUInt64LE(BigInt(t[1]), at + 32);
  out.writeBigUInt64LE(recvTs, at + 40);
  out.writeBigInt64LE(units(quote.bp), at + 48);
  out.writeBigInt64LE(units(quote.ap), at + 56);
  out.writeUInt32LE(quote.bs >>> 0, at + 64);
  out.writeUInt32LE(quote.as >>> 0, at + 68);
  return quote.sym;
}

const server = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  fetch(req, server) {
    if (server.upgrade(req)) return undefined;
    return new Response('WebSocket only', { status: 426 });
  },
  websocket: {
    perMessageDeflate: false,
    maxPayloadLength: 64 * 1024,
    backpressureLimit: BACKPRESSURE_LIMIT,
    // The bench's clients only read: no idle timeout, as with the Node peer.
    idleTimeout: 0,
    message(ws, data) {
      if (typeof data !== 'string') return;
      let request;
      try {
        request = JSON.parse(data);
      } catch {
        ws.send(JSON.stringify({ type: 'error', id: null, code: 'malformed_json', message: 'not JSON' }));
        return;
      }
      const symbols = Array.isArray(request.symbols) ? request.symbols.map(String) : [];
      for (const symbol of symbols) ws.subscribe(symbol);
      ws.send(JSON.stringify({ type: 'ack', id: request.id ?? null, op: 'subscribe', symbols }));
    },
  },
});

// One feed chunk: its quotes grouped by symbol, one publish per symbol.
let rest = '';
function onChunk(chunk) {
  const text = rest + chunk;
  const lines = text.split('\n');
  rest = lines.pop();
  const recvTs = nowNs();
  const bySymbol = new Map(); // symbol -> [line records buffer, count]
  for (const line of lines) {
    if (line.length === 0) continue;
    // Parse once into a scratch record, then copy it into its symbol's message.
    const symbol = record(line, recvTs, scratch, 0);
    if (symbol === null) continue;
    let group = bySymbol.get(symbol);
    if (!group) bySymbol.set(symbol, (group = []));
    group.push(Buffer.from(scratch));
  }
  const sentNs = nowNs();
  for (const [symbol, records] of bySymbol) {
    const message = Buffer.allocUnsafe(HEADER + RECORD * records.length);
    message.fill(0, 0, HEADER);
    message.writeUInt16LE(HEADER, 0);
    message[2] = 0x01; // message header
    message[4] = 1; // protocol major version
    message.writeBigUInt64LE(sentNs, 8);
    records.forEach((r, i) => r.copy(message, HEADER + i * RECORD));
    server.publish(symbol, message);
  }
}
const scratch = Buffer.alloc(RECORD);

const [host, feedPort] = feedAddress.split(':');
const decoder = new TextDecoder('latin1');
await Bun.connect({
  hostname: host,
  port: Number(feedPort),
  socket: {
    open(socket) {
      socket.setNoDelay(true);
      process.stdout.write(`listening ${server.hostname}:${server.port}\n`);
    },
    data(socket, data) {
      onChunk(decoder.decode(data));
    },
    // The bench ends the peer by closing the feed.
    close() {
      process.exit(0);
    },
    error(socket, err) {
      console.error(`bun peer: feed: ${err.message}`);
      process.exit(1);
    },
    connectError(socket, err) {
      console.error(`bun peer: feed: ${err.message}`);
      process.exit(1);
    },
  },
});
