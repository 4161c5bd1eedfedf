// Reference decoder and client for the quotehub wire protocol, version 1.
//
// Written from crates/quotehub-proto/SPEC.md alone. One ES module with no
// dependencies and no build step, so it runs unchanged in browsers and in
// Node 20 (which has no global WebSocket: pass the `ws` package's class).
//
// Every 64-bit field is a BigInt and every price an exact decimal string:
// timestamps in ns and i64 price units both exceed 2^53, where a Number
// would silently round.

export const BINARY_PROTOCOL = 'quotehub.v1.binary';
export const JSON_PROTOCOL = 'quotehub.v1.json';

const MAJOR_VERSION = 1;

const RTYPE_MESSAGE_HEADER = 0x01;
const RTYPE_QUOTE = 0x02;
const RTYPE_TRADE = 0x03;
const RTYPE_STATUS = 0x04;
// Minor version 1: sent only to clients that name the bars.* or bbo channels.
const RTYPE_BAR = 0x05;
const RTYPE_BBO = 0x06;

// Documented lengths: a known record may be longer (a later minor version
// appended fields) but never shorter.
const MIN_LENGTH = {
  [RTYPE_MESSAGE_HEADER]: 16,
  [RTYPE_QUOTE]: 72,
  [RTYPE_TRADE]: 64,
  [RTYPE_STATUS]: 24,
  [RTYPE_BAR]: 104,
  [RTYPE_BBO]: 88,
};

const RECORD_HEADER_LEN = 4;
const SYMBOL_LEN = 16;

const FLAG_SNAPSHOT = 0x01;
const FLAG_CONFLATED = 0x02;
const FLAG_REPLAYED = 0x04;
const FLAG_RESET = 0x08;

const STATUS_NAMES = ['replay_started', 'replay_looped', 'replay_ended', 'upstream_down', 'upstream_up', 'shutdown'];

/**
 * The channel names a request may carry (SPEC.md, "Channels"); a hub that
 * does not carry one answers `unknown_channel`.
 */
export const CHANNELS = Object.freeze(['quotes', 'trades', 'bars.1s', 'bars.1m', 'bbo']);

const UNITS_PER_ONE = 1_000_000_000n;
const PRICE_SCALE = 9;

/**
 * Decodes one binary WebSocket message.
 *
 * Throws an Error naming the byte offset on a malformed message. Records of
 * an unknown type are skipped by their length and reported as
 * `{type: 'unknown', rtype, length}`; unknown flag bits and unknown status
 * codes are ignored / reported as `name: 'unknown'`, per the versioning rules.
 *
 * @param {ArrayBuffer | ArrayBufferView} data
 */
export function decodeMessage(data) {
  const view = asDataView(data);
  const total = view.byteLength;
  let header = null;
  const records = [];
  let offset = 0;
  while (offset < total) {
    if (total - offset < RECORD_HEADER_LEN) {
      throw new Error(`truncated message: ${total - offset} stray byte(s) at offset ${offset}, too few for a record`);
    }
    const length = view.getUint16(offset, true);
    const rtype = view.getUint8(offset + 2);
    // A length below 8 could never advance past a record (0 would loop forever).
    if (length < 8 || length % 8 !== 0) {
      throw new Error(
        `record at offset ${offset} (rtype 0x${hex(rtype)}) has length ${length}, not a positive multiple of 8`,
      );
    }
    if (length > total - offset) {
      throw new Error(
        `truncated message: record at offset ${offset} (rtype 0x${hex(rtype)}) has length ${length} but only ${total - offset} byte(s) remain`,
      );
    }
    const minLength = MIN_LENGTH[rtype];
    if (minLength !== undefined && length < minLength) {
      throw new Error(
        `record at offset ${offset} (rtype 0x${hex(rtype)}) has length ${length}, shorter than its documented ${minLength}`,
      );
    }
    if (header === null) {
      if (rtype !== RTYPE_MESSAGE_HEADER) {
        throw new Error(`the first record is rtype 0x${hex(rtype)}, not a message header (0x01)`);
      }
      header = readMessageHeader(view, offset);
    } else if (rtype === RTYPE_MESSAGE_HEADER) {
      throw new Error(`a second message header at offset ${offset}: only the first record may be one`);
    } else {
      records.push(readRecord(view, offset, rtype, length));
    }
    offset += length;
  }
  if (header === null) {
    throw new Error('empty message: expected at least a message header');
  }
  return { ...header, records };
}

function asDataView(data) {
  if (data instanceof ArrayBuffer) return new DataView(data);
  // Covers Uint8Array and Node's Buffer, which is often a slice of a larger pool.
  if (ArrayBuffer.isView(data)) return new DataView(data.buffer, data.byteOffset, data.byteLength);
  throw new Error(`decodeMessage expects an ArrayBuffer or a Uint8Array, got ${describe(data)}`);
}

function readMessageHeader(view, offset) {
  const version = view.getUint8(offset + 4);
  if (version !== MAJOR_VERSION) {
    throw new Error(`unsupported protocol major version ${version}: this reader knows version ${MAJOR_VERSION}`);
  }
  return {
    version,
    minor: view.getUint8(offset + 5),
    sendTs: view.getBigUint64(offset + 8, true),
  };
}

function readRecord(view, offset, rtype, length) {
  switch (rtype) {
    case RTYPE_QUOTE:
      return {
        type: 'quote',
        symbol: readSymbol(view, offset),
        seq: view.getBigUint64(offset + 24, true),
        eventTs: view.getBigUint64(offset + 32, true),
        recvTs: view.getBigUint64(offset + 40, true),
        bidPrice: formatPrice(view.getBigInt64(offset + 48, true)),
        bidSize: view.getUint32(offset + 64, true),
        askPrice: formatPrice(view.getBigInt64(offset + 56, true)),
        askSize: view.getUint32(offset + 68, true),
        conflated: view.getUint32(offset + 4, true),
        flags: decodeFlags(view.getUint8(offset + 3)),
      };
    case RTYPE_TRADE:
      return {
        type: 'trade',
        symbol: readSymbol(view, offset),
        seq: view.getBigUint64(offset + 24, true),
        eventTs: view.getBigUint64(offset + 32, true),
        recvTs: view.getBigUint64(offset + 40, true),
        price: formatPrice(view.getBigInt64(offset + 48, true)),
        size: view.getUint32(offset + 56, true),
        conflated: view.getUint32(offset + 4, true),
        flags: decodeFlags(view.getUint8(offset + 3)),
      };
    case RTYPE_STATUS: {
      const code = view.getUint16(offset + 4, true);
      return {
        type: 'status',
        code,
        name: statusName(code),
        feed: view.getUint16(offset + 6, true),
        ts: view.getBigUint64(offset + 8, true),
        detail: view.getBigUint64(offset + 16, true),
      };
    }
    case RTYPE_BAR: {
      const intervalS = view.getUint32(offset + 96, true);
      return {
        type: 'bar',
        symbol: readSymbol(view, offset),
        seq: view.getBigUint64(offset + 24, true),
        interval: intervalName(intervalS),
        intervalS,
        startTs: view.getBigUint64(offset + 32, true),
        recvTs: view.getBigUint64(offset + 40, true),
        open: formatPrice(view.getBigInt64(offset + 48, true)),
        high: formatPrice(view.getBigInt64(offset + 56, true)),
        low: formatPrice(view.getBigInt64(offset + 64, true)),
        close: formatPrice(view.getBigInt64(offset + 72, true)),
        vwap: formatPrice(view.getBigInt64(offset + 80, true)),
        volume: view.getBigUint64(offset + 88, true),
        tradeCount: view.getUint32(offset + 100, true),
        conflated: view.getUint32(offset + 4, true),
        flags: decodeFlags(view.getUint8(offset + 3)),
      };
    }
    case RTYPE_BBO:
      return {
        type: 'bbo',
        symbol: readSymbol(view, offset),
        seq: view.getBigUint64(offset + 24, true),
        eventTs: view.getBigUint64(offset + 32, true),
        recvTs: view.getBigUint64(offset + 40, true),
        bidPrice: formatPrice(view.getBigInt64(offset + 48, true)),
        bidSize: view.getBigUint64(offset + 64, true),
        bidFeed: view.getUint16(offset + 80, true),
        bidFeeds: view.getUint16(offset + 84, true),
        askPrice: formatPrice(view.getBigInt64(offset + 56, true)),
        askSize: view.getBigUint64(offset + 72, true),
        askFeed: view.getUint16(offset + 82, true),
        askFeeds: view.getUint16(offset + 86, true),
        conflated: view.getUint32(offset + 4, true),
        flags: decodeFlags(view.getUint8(offset + 3)),
      };
    default:
      return { type: 'unknown', rtype, length };
  }
}

// A bar's interval as in its channel name: whole minutes as '<n>m', else '<n>s'.
function intervalName(seconds) {
  return seconds !== 0 && seconds % 60 === 0 ? `${seconds / 60}m` : `${seconds}s`;
}

// The symbol field sits at offset 8 of every record that has one: ASCII, NUL-padded.
function readSymbol(view, offset) {
  let symbol = '';
  let padding = false;
  for (let i = 0; i < SYMBOL_LEN; i++) {
    const byte = view.getUint8(offset + 8 + i);
    if (byte === 0) {
      padding = true;
    } else if (padding || byte < 0x21 || byte > 0x7e) {
      throw new Error(`record at offset ${offset} has a malformed symbol field (byte 0x${hex(byte)} at position ${i})`);
    } else {
      symbol += String.fromCharCode(byte);
    }
  }
  if (symbol === '') throw new Error(`record at offset ${offset} has an empty symbol`);
  return symbol;
}

// Unknown bits are reserved for later minor versions: ignored, not an error.
function decodeFlags(bits) {
  return {
    snapshot: (bits & FLAG_SNAPSHOT) !== 0,
    conflated: (bits & FLAG_CONFLATED) !== 0,
    replayed: (bits & FLAG_REPLAYED) !== 0,
    reset: (bits & FLAG_RESET) !== 0,
  };
}

function statusName(code) {
  return STATUS_NAMES[code - 1] ?? 'unknown';
}

/**
 * Formats a price given in units of 1e-9 as an exact decimal string, with
 * no trailing zeros and no exponent: 18730000000n -> "18.73".
 *
 * @param {bigint} units
 */
export function formatPrice(units) {
  if (typeof units !== 'bigint')
    throw new Error(`formatPrice expects a BigInt count of 1e-9 units, got ${describe(units)}`);
  const magnitude = units < 0n ? -units : units;
  const whole = (magnitude / UNITS_PER_ONE).toString();
  const fraction = (magnitude % UNITS_PER_ONE).toString().padStart(PRICE_SCALE, '0').replace(/0+$/, '');
  return `${units < 0n ? '-' : ''}${whole}${fraction === '' ? '' : `.${fraction}`}`;
}

// The JSON form gives prices as decimal strings; going through units makes
// them exactly as formatPrice writes them, whatever zeros the hub wrote.
function parsePrice(text) {
  const match = typeof text === 'string' ? /^(-?)(\d+)(?:\.(\d{1,9}))?$/.exec(text) : null;
  if (match === null) throw new Error(`malformed price ${describe(text)} in a JSON record`);
  const units = BigInt(match[2]) * UNITS_PER_ONE + BigInt((match[3] ?? '').padEnd(PRICE_SCALE, '0'));
  return formatPrice(match[1] === '-' ? -units : units);
}

/**
 * The URL of a replay session on a hub: `hubUrl` is any URL of the hub
 * (`ws://127.0.0.1:8080/v1/quotes`; scheme and host are kept), `feed` a name
 * from `GET /v1/replay/feeds`. Options: `speed` (a factor or 'max'), `from`
 * and `to` (RFC 3339 or ns since the epoch), `symbols` (array), `loop`.
 * Open it with a QuotehubClient: records arrive as from /v1/quotes, between
 * replay_started and replay_ended statuses, and the hub then closes normally.
 */
export function replayUrl(hubUrl, feed, { speed, from, to, symbols, loop } = {}) {
  const url = new URL(hubUrl);
  url.pathname = '/v1/replay';
  url.search = '';
  const params = { feed, speed, from, to, symbols: symbols?.length ? symbols.join(',') : undefined, loop };
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '' && value !== false) url.searchParams.set(name, String(value));
  }
  return url.toString();
}

/**
 * A WebSocket client: requests as JSON text, records decoded from either
 * sub-protocol into the same objects as decodeMessage returns.
 */
export class QuotehubClient {
  #url;
  #Impl;
  #protocol;
  #socket = null;
  #nextId = 1;
  // Replies come one per request, in order: the oldest pending request owns the next reply.
  #pending = [];
  #recordCallbacks = [];
  #ackCallbacks = [];
  #closeCallbacks = [];
  #error = null;
  // The hub's sequence space, from the last ack.
  #epoch = null;
  // The API key presented on connect, if any.
  #apiKey;

  /**
   * `apiKey`, for a hub that requires one, is sent in the `Authorization`
   * header where the WebSocket implementation takes headers (Node's `ws`);
   * a browser's cannot, so in a page it goes in the URL as `?api_key=`.
   */
  constructor(url, { WebSocket: Impl = globalThis.WebSocket, protocol = BINARY_PROTOCOL, apiKey } = {}) {
    if (typeof Impl !== 'function') {
      throw new Error('no WebSocket implementation: pass { WebSocket } (in Node 20, the class of the `ws` package)');
    }
    if (protocol !== BINARY_PROTOCOL && protocol !== JSON_PROTOCOL) {
      throw new Error(`unknown sub-protocol ${describe(protocol)}: use ${BINARY_PROTOCOL} or ${JSON_PROTOCOL}`);
    }
    if (apiKey !== undefined && (typeof apiKey !== 'string' || apiKey === '')) {
      throw new Error(`apiKey must be a non-empty string, got ${describe(apiKey)}`);
    }
    this.#url = url;
    this.#Impl = Impl;
    this.#protocol = protocol;
    this.#apiKey = apiKey;
  }

  /** Opens the connection; resolves once it is open with the requested sub-protocol. */
  connect() {
    if (this.#socket !== null) return Promise.reject(new Error('connect() was already called on this client'));
    let socket;
    if (this.#apiKey === undefined) {
      socket = new this.#Impl(this.#url, this.#protocol);
    } else if (typeof window !== 'undefined' && typeof document !== 'undefined') {
      // A page's WebSocket takes no headers.
      const url = new URL(this.#url);
      url.searchParams.set('api_key', this.#apiKey);
      socket = new this.#Impl(url.toString(), this.#protocol);
    } else {
      socket = new this.#Impl(this.#url, this.#protocol, { headers: { Authorization: `Bearer ${this.#apiKey}` } });
    }
    socket.binaryType = 'arraybuffer';
    this.#socket = socket;
    return new Promise((resolve, reject) => {
      let opened = false;
      socket.addEventListener('open', () => {
        opened = true;
        if (socket.protocol !== this.#protocol) {
          this.#fail(new Error(`the hub chose sub-protocol ${describe(socket.protocol)}, not ${this.#protocol}`));
          reject(this.#error);
          return;
        }
        resolve();
      });
      socket.addEventListener('message', (event) => this.#onMessage(event.data));
      // A 'close' event always follows 'error' and settles everything; only
      // the detail is kept, which `ws` gives and browsers do not. (Listening
      // also keeps `ws` from throwing the error as an unhandled event.)
      let detail = '';
      socket.addEventListener('error', (event) => {
        const message = event.error?.message ?? event.message;
        if (typeof message === 'string' && message !== '') detail = `: ${message}`;
      });
      socket.addEventListener('close', (event) => {
        const closed = { code: event.code, reason: event.reason };
        if (this.#error !== null) closed.error = this.#error;
        if (!opened) {
          // Never open: connect() rejecting says it all, onClose is for open connections.
          reject(
            new Error(
              `could not connect to ${this.#url}${detail} (close code ${event.code}${event.reason ? `: ${event.reason}` : ''})`,
            ),
          );
          return;
        }
        this.#rejectPending(
          new Error(`connection closed (code ${event.code}${event.reason ? `: ${event.reason}` : ''})`),
        );
        for (const callback of this.#closeCallbacks) invoke(callback, closed);
      });
    });
  }

  /**
   * Subscribes to `symbols` (`['*']` for all); resolves with the ack, whose
   * `epoch` names the hub's sequence space (16 hex digits; also kept as
   * `client.epoch`). `resume` maps a symbol to the last `seq` seen (BigInt
   * or integer); `epoch` says which space those numbers are from (the
   * epoch of the ack the client had then). A hub that numbers in another
   * space (it restarted) answers with snapshots flagged `reset`, so numbers
   * of the old space must not be compared with the new ones.
   *
   * The records that follow the ack may reach onRecord before code awaiting
   * this promise runs (Node's `ws` emits one read's messages back to back).
   *
   * `channels` names the kinds of records wanted (see CHANNELS; SPEC.md,
   * "Channels"), added to each symbol's; without it the hub sends quotes
   * and trades. Each channel new to a symbol starts with its snapshot.
   */
  subscribe(symbols, { resume, epoch, channels } = {}) {
    return this.#request('subscribe', symbols, resume, epoch, channels);
  }

  /** The hub's sequence space, from the last ack (`null` before one). */
  get epoch() {
    return this.#epoch;
  }

  /**
   * Unsubscribes from `symbols`, or only from `channels` of them (a symbol
   * left with none is dropped); resolves with the ack.
   */
  unsubscribe(symbols, { channels } = {}) {
    return this.#request('unsubscribe', symbols, undefined, undefined, channels);
  }

  /** Registers `callback(record, sendTs)`, called for each record in hub order. */
  onRecord(callback) {
    this.#recordCallbacks.push(callback);
  }

  /**
   * Registers `callback(ack)`, called when an ack arrives: in hub order, so
   * before the records that follow it (the request's promise settles later).
   */
  onAck(callback) {
    this.#ackCallbacks.push(callback);
  }

  /**
   * Registers `callback({code, reason, error?})` for when an open connection
   * closes; `error` is set when this client gave up on a malformed message.
   */
  onClose(callback) {
    this.#closeCallbacks.push(callback);
  }

  /** Closes the connection; onClose callbacks follow. */
  close() {
    this.#socket?.close();
  }

  #request(op, symbols, resume, epoch, channels) {
    if (this.#socket === null || this.#socket.readyState !== 1 /* OPEN */) {
      return Promise.reject(new Error(`cannot ${op}: the connection is not open`));
    }
    if (!Array.isArray(symbols)) {
      return Promise.reject(new Error(`${op} expects an array of symbols, got ${describe(symbols)}`));
    }
    if (
      channels !== undefined &&
      !(Array.isArray(channels) && channels.length > 0 && channels.every((name) => typeof name === 'string'))
    ) {
      return Promise.reject(new Error(`channels must be a non-empty array of names, got ${describe(channels)}`));
    }
    const id = this.#nextId++;
    // Built by hand because JSON.stringify throws on the BigInt sequence numbers records carry.
    let text = `{"op":${JSON.stringify(op)},"symbols":${JSON.stringify(symbols)},"id":${id}`;
    if (channels !== undefined) {
      text += `,"channels":${JSON.stringify(channels)}`;
    }
    if (resume !== undefined) {
      const entries = [];
      for (const [symbol, seq] of Object.entries(resume)) {
        if (!(typeof seq === 'bigint' || Number.isSafeInteger(seq)) || seq < 0) {
          return Promise.reject(
            new Error(`resume[${JSON.stringify(symbol)}] must be a non-negative integer, got ${describe(seq)}`),
          );
        }
        entries.push(`${JSON.stringify(symbol)}:${seq}`);
      }
      text += `,"resume":{${entries.join(',')}}`;
    }
    if (epoch !== undefined && epoch !== null) {
      if (typeof epoch !== 'string' || !/^[0-9a-f]{16}$/.test(epoch)) {
        return Promise.reject(new Error(`epoch must be 16 hex digits as an ack gives it, got ${describe(epoch)}`));
      }
      text += `,"epoch":"${epoch}"`;
    }
    text += '}';
    return new Promise((resolve, reject) => {
      this.#pending.push({ id, resolve, reject });
      this.#socket.send(text);
    });
  }

  #onMessage(data) {
    if (this.#error !== null) return;
    try {
      if (typeof data === 'string') {
        this.#onText(data);
      } else {
        const message = decodeMessage(data);
        this.#deliver(message.records, message.sendTs);
      }
    } catch (error) {
      // Decoding on after a bad message could hide a gap: stop and say why.
      this.#fail(error);
    }
  }

  #onText(text) {
    const value = JSON.parse(text);
    if (value?.type === 'records') {
      // Parsed again, exactly: JSON.parse would round the 64-bit integers.
      const message = parseExactJson(text);
      this.#deliver(message.records.map(fromJsonRecord), toBigInt(message.send_ts, 'send_ts'));
      return;
    }
    const pending = this.#pending.shift();
    if (pending === undefined) throw new Error(`a reply with no request pending: ${text}`);
    // malformed_json replies carry a null id; every other reply echoes ours.
    if (value?.id !== pending.id && value?.id !== null) {
      pending.reject(new Error(`reply for id ${JSON.stringify(value?.id)} while waiting for id ${pending.id}`));
      throw new Error(`replies out of order: got id ${JSON.stringify(value?.id)}, expected ${pending.id}`);
    }
    if (value.type === 'ack') {
      if (typeof value.epoch === 'string') this.#epoch = value.epoch;
      for (const callback of this.#ackCallbacks) invoke(callback, value);
      pending.resolve(value);
    } else {
      // Unknown reply types and unknown codes are errors, as the spec says of codes.
      const error = new Error(typeof value.message === 'string' ? value.message : `unexpected reply: ${text}`);
      error.code = typeof value.code === 'string' ? value.code : 'unexpected_reply';
      error.reply = value;
      pending.reject(error);
    }
  }

  #deliver(records, sendTs) {
    for (const record of records) {
      for (const callback of this.#recordCallbacks) invoke(callback, record, sendTs);
    }
  }

  #fail(error) {
    this.#error = error;
    this.#rejectPending(error);
    this.#socket.close();
  }

  #rejectPending(error) {
    for (const pending of this.#pending.splice(0)) pending.reject(error);
  }
}

// A throwing callback must not cut off the records after it: report it as
// uncaught, asynchronously, and carry on.
function invoke(callback, ...args) {
  try {
    callback(...args);
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}

const FLAG_NAMES = ['snapshot', 'conflated', 'replayed', 'reset'];

// Maps a record of the JSON form onto the shape decodeMessage returns.
function fromJsonRecord(record) {
  const flags = () => {
    const names = Array.isArray(record.flags) ? record.flags : [];
    return Object.fromEntries(FLAG_NAMES.map((name) => [name, names.includes(name)]));
  };
  switch (record.type) {
    case 'quote':
      return {
        type: 'quote',
        symbol: record.sym,
        seq: toBigInt(record.seq, 'seq'),
        eventTs: toBigInt(record.t, 't'),
        recvTs: toBigInt(record.recv_ts, 'recv_ts'),
        bidPrice: parsePrice(record.bp),
        bidSize: toNumber(record.bs, 'bs'),
        askPrice: parsePrice(record.ap),
        askSize: toNumber(record.as, 'as'),
        conflated: toNumber(record.conflated ?? 0n, 'conflated'),
        flags: flags(),
      };
    case 'trade':
      return {
        type: 'trade',
        symbol: record.sym,
        seq: toBigInt(record.seq, 'seq'),
        eventTs: toBigInt(record.t, 't'),
        recvTs: toBigInt(record.recv_ts, 'recv_ts'),
        price: parsePrice(record.p),
        size: toNumber(record.s, 's'),
        conflated: record.conflated === undefined ? 0 : toNumber(record.conflated, 'conflated'),
        flags: flags(),
      };
    case 'status': {
      const code = toNumber(record.code_num, 'code_num');
      return {
        type: 'status',
        code,
        name: statusName(code),
        feed: toNumber(record.feed, 'feed'),
        ts: toBigInt(record.ts, 'ts'),
        detail: toBigInt(record.detail, 'detail'),
      };
    }
    case 'bar': {
      const intervalS = toNumber(record.interval_s, 'interval_s');
      return {
        type: 'bar',
        symbol: record.sym,
        seq: toBigInt(record.seq, 'seq'),
        interval: intervalName(intervalS),
        intervalS,
        startTs: toBigInt(record.t, 't'),
        recvTs: toBigInt(record.recv_ts, 'recv_ts'),
        open: parsePrice(record.o),
        high: parsePrice(record.h),
        low: parsePrice(record.l),
        close: parsePrice(record.c),
        vwap: parsePrice(record.vw),
        volume: toBigInt(record.v, 'v'),
        tradeCount: toNumber(record.n, 'n'),
        conflated: toNumber(record.conflated ?? 0n, 'conflated'),
        flags: flags(),
      };
    }
    case 'bbo':
      return {
        type: 'bbo',
        symbol: record.sym,
        seq: toBigInt(record.seq, 'seq'),
        eventTs: toBigInt(record.t, 't'),
        recvTs: toBigInt(record.recv_ts, 'recv_ts'),
        bidPrice: parsePrice(record.bp),
        bidSize: toBigInt(record.bs, 'bs'),
        bidFeed: toNumber(record.bx, 'bx'),
        bidFeeds: toNumber(record.bn, 'bn'),
        askPrice: parsePrice(record.ap),
        askSize: toBigInt(record.as, 'as'),
        askFeed: toNumber(record.ax, 'ax'),
        askFeeds: toNumber(record.an, 'an'),
        conflated: toNumber(record.conflated ?? 0n, 'conflated'),
        flags: flags(),
      };
    default:
      return { type: 'unknown', rtype: toNumber(record.rtype, 'rtype'), length: toNumber(record.length, 'length') };
  }
}

function toBigInt(value, field) {
  if (typeof value !== 'bigint') throw new Error(`JSON record field ${field} is ${describe(value)}, not an integer`);
  return value;
}

// Sizes, counts and codes are at most 32 bits: exact as Numbers.
function toNumber(value, field) {
  return Number(toBigInt(value, field));
}

// Sticky, so that each match starts exactly where the parser stands.
const LITERAL = /true|false|null|-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;

// A JSON parser that keeps every integer literal as a BigInt (other numbers
// are Numbers). Node 20 has no JSON.parse source access to do this with a reviver.
function parseExactJson(text) {
  let at = 0;
  const fail = (what) => {
    throw new Error(`malformed JSON at character ${at}: ${what}`);
  };
  const skipSpace = () => {
    while (at < text.length && ' \t\n\r'.includes(text[at])) at++;
  };
  const value = () => {
    skipSpace();
    const char = text[at];
    if (char === '{') {
      at++;
      const object = {};
      skipSpace();
      if (text[at] === '}') {
        at++;
        return object;
      }
      for (;;) {
        skipSpace();
        if (text[at] !== '"') fail('expected a key');
        const key = string();
        skipSpace();
        if (text[at++] !== ':') fail("expected ':'");
        object[key] = value();
        skipSpace();
        const next = text[at++];
        if (next === '}') return object;
        if (next !== ',') fail("expected ',' or '}'");
      }
    }
    if (char === '[') {
      at++;
      const array = [];
      skipSpace();
      if (text[at] === ']') {
        at++;
        return array;
      }
      for (;;) {
        array.push(value());
        skipSpace();
        const next = text[at++];
        if (next === ']') return array;
        if (next !== ',') fail("expected ',' or ']'");
      }
    }
    if (char === '"') return string();
    LITERAL.lastIndex = at;
    const literal = LITERAL.exec(text);
    if (literal === null) fail('expected a value');
    at += literal[0].length;
    if (literal[0] === 'true') return true;
    if (literal[0] === 'false') return false;
    if (literal[0] === 'null') return null;
    return literal[1] === undefined && literal[2] === undefined ? BigInt(literal[0]) : Number(literal[0]);
  };
  const string = () => {
    STRING.lastIndex = at;
    const match = STRING.exec(text);
    if (match === null) fail('malformed string');
    at += match[0].length;
    return JSON.parse(match[0]);
  };
  const result = value();
  skipSpace();
  if (at !== text.length) fail('trailing characters');
  return result;
}

function hex(byte) {
  return byte.toString(16).padStart(2, '0');
}

function describe(value) {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  return `${typeof value} ${String(value)}`;
}
