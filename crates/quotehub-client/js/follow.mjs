// Following symbols on a hub across lost connections: reconnect with capped,
// jittered backoff, resume every symbol where it left off, and keep the
// sequence numbers honest across a hub restart (SPEC.md, "Sequence spaces").
//
// Built on QuotehubClient alone; like it, no dependencies and no build step.
//
//   import WebSocket from 'ws';
//   import { follow } from './follow.mjs';
//
//   const follower = follow('ws://127.0.0.1:8080/v1/quotes', ['AAPL', 'MSFT'], {
//     WebSocket,
//     onSubscribed: ({ unseen }) => unseen.forEach((s) => console.error(`${s}: no data yet from any feed`)),
//     onRecord: (record) => console.log(record.symbol, record.seq, record.flags.reset ? 'RESET' : ''),
//   });
//   await follower.done;

import { BINARY_PROTOCOL, QuotehubClient } from './quotehub.mjs';

/** The reconnect policy `follow` uses unless told otherwise (the Rust client's). */
export const DEFAULT_BACKOFF = Object.freeze({ initialMs: 100, maxMs: 5000, maxAttempts: 20 });

/**
 * Subscribes to `symbols` (`['*']` for all) on the hub at `url` and keeps
 * following them until `close()`: a lost connection is opened again after a
 * capped, jittered backoff and the subscription renewed with `resume` = the
 * last `seq` seen per symbol and the `epoch` of the last ack. The hub then
 * sends what was missed from its history, or, when it cannot (its history
 * no longer reaches back, or it restarted and numbers in a new sequence
 * space), a snapshot flagged `reset`.
 *
 * What the caller is handed keeps each symbol's numbers moving forward: a
 * quote or trade numbered at or below the last one seen in the same
 * sequence space is a duplicate and is dropped (counted in `duplicates`);
 * only a record flagged `reset` may set a symbol's number back, and numbers
 * of an old space are forgotten once an ack names a new one.
 *
 * Options:
 * - `WebSocket`, `protocol`, `apiKey`: as for QuotehubClient;
 * - `channels`: the channels to follow (SPEC.md, "Channels"; default: the
 *   hub's, quotes and trades), named in every subscribe, the resumed ones
 *   too, so a reconnect resumes exactly those channels;
 * - `onRecord(record, {sendTs, epoch})`: each record to deliver, in hub order
 *   (statuses included; a `record.flags.reset` quote or trade replaces lost ones);
 * - `onSubscribed({ack, epoch, unseen, resumed})`: each ack, before the records
 *   that follow it; `unseen` lists the requested symbols no feed has sent yet;
 * - `onReconnecting({attempt, delayMs, reason})`: before each wait to reconnect;
 * - `backoff`: `{initialMs, maxMs, maxAttempts}` (see DEFAULT_BACKOFF), the
 *   wait doubling from `initialMs` up to `maxMs`, each drawn from its upper half;
 *   `maxAttempts` failed attempts in a row end the follower;
 * - `random`: the source of jitter in [0, 1) (`Math.random`).
 *
 * `follower.done` resolves when `close()` is called or the hub closes the
 * connection normally (1000), and rejects when following cannot go on: the
 * first connection failed, the hub refused the subscription, refused the
 * API key (401/403), sent a malformed message, or `maxAttempts` attempts in
 * a row failed.
 */
export function follow(url, symbols, options = {}) {
  return new Follower(url, symbols, options);
}

export class Follower {
  #url;
  #symbols;
  #clientOptions;
  #channels;
  #onRecord;
  #onSubscribed;
  #onReconnecting;
  #backoff;
  #random;
  #client = null;
  #stopped = false;
  // Cuts a backoff wait short when close() is called.
  #wake = null;
  // The sequence space #lastSeq's numbers are from: the epoch of the last ack.
  #epoch = null;
  // The last seq delivered per symbol (BigInt), in #epoch: the resume points.
  #lastSeq = new Map();
  #resets = 0;
  #duplicates = 0;
  #epochChanges = 0;
  #reconnects = 0;

  /** Settles when following ends; see `follow`. */
  done;

  constructor(url, symbols, options = {}) {
    const {
      WebSocket,
      protocol = BINARY_PROTOCOL,
      apiKey,
      channels,
      onRecord = () => {},
      onSubscribed = () => {},
      onReconnecting = () => {},
      backoff = {},
      random = Math.random,
    } = options;
    if (!Array.isArray(symbols) || symbols.length === 0) {
      throw new Error('follow expects a non-empty array of symbols');
    }
    this.#url = url;
    this.#symbols = [...symbols];
    if (channels !== undefined && !(Array.isArray(channels) && channels.length > 0)) {
      throw new Error('channels, when given, must be a non-empty array of names');
    }
    this.#channels = channels === undefined ? undefined : [...channels];
    this.#clientOptions = { WebSocket, protocol, apiKey };
    // A bad option is better reported now than at the first reconnect.
    new QuotehubClient(url, this.#clientOptions);
    this.#onRecord = onRecord;
    this.#onSubscribed = onSubscribed;
    this.#onReconnecting = onReconnecting;
    this.#backoff = { ...DEFAULT_BACKOFF, ...backoff };
    const { initialMs, maxMs, maxAttempts } = this.#backoff;
    if (!(initialMs > 0 && maxMs >= initialMs && maxAttempts >= 1)) {
      throw new Error(`backoff needs 0 < initialMs <= maxMs and maxAttempts >= 1, got ${JSON.stringify(this.#backoff)}`);
    }
    this.#random = random;
    this.done = this.#run();
  }

  /** The hub's sequence space, from the last ack (`null` before one). */
  get epoch() {
    return this.#epoch;
  }

  /** The last sequence number delivered for `symbol` in the current space, or `undefined`. */
  lastSeq(symbol) {
    return this.#lastSeq.get(symbol);
  }

  /** Records delivered flagged `reset`: times records were lost. */
  get resets() {
    return this.#resets;
  }

  /** Quotes and trades dropped because their number was already delivered. */
  get duplicates() {
    return this.#duplicates;
  }

  /** Acks that named another sequence space than the one before (a hub restart). */
  get epochChanges() {
    return this.#epochChanges;
  }

  /** Connections opened again after one was lost. */
  get reconnects() {
    return this.#reconnects;
  }

  /** Stops following: closes the connection, or ends a wait to reconnect. */
  close() {
    this.#stopped = true;
    this.#client?.close();
    this.#wake?.();
  }

  async #run() {
    // Attempts in a row that got no ack; a connection that got one starts again at 0.
    let failures = 0;
    let reason = null;
    for (;;) {
      if (reason !== null) {
        if (failures >= this.#backoff.maxAttempts) {
          throw new Error(`gave up after ${failures} attempt(s) in a row: ${reason}`);
        }
        const delayMs = this.#delay(failures);
        invoke(this.#onReconnecting, { attempt: failures + 1, delayMs, reason });
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, delayMs);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = null;
      }
      if (this.#stopped) return;
      const outcome = await this.#connection(reason !== null);
      if (outcome.end) return;
      // A first connection that fails is a wrong URL or a hub not started:
      // said at once, as QuotehubClient.connect would.
      if (reason === null && outcome.unreachable) throw new Error(outcome.reason);
      failures = outcome.subscribed ? 0 : failures + 1;
      reason = outcome.reason;
    }
  }

  // One connection, from connect to close: `{end}` when following is over,
  // else `{subscribed, reason}`; throws when it cannot go on.
  async #connection(again) {
    const client = new QuotehubClient(this.#url, this.#clientOptions);
    this.#client = client;
    let closed;
    const closing = new Promise((resolve) => {
      closed = resolve;
    });
    client.onClose(closed);
    client.onAck((ack) => this.#onAck(ack, again));
    client.onRecord((record, sendTs) => this.#deliver(record, sendTs));
    try {
      await client.connect();
    } catch (error) {
      if (this.#stopped) return { end: true };
      if (/Unexpected server response: 40[13]\b/.test(error.message)) throw error;
      return { subscribed: false, unreachable: true, reason: error.message };
    }
    if (this.#stopped) {
      client.close();
      return { end: true };
    }
    let subscribed = false;
    try {
      await client.subscribe(this.#symbols, { ...this.#resumePoints(), channels: this.#channels });
      subscribed = true;
      if (again) this.#reconnects += 1;
    } catch (error) {
      // An error reply (it has a code) will not change on retry; a lost connection may.
      if (error.code !== undefined) {
        client.close();
        throw new Error(`the hub refused the subscription: ${error.code}: ${error.message}`);
      }
    }
    const { code, reason, error } = await closing;
    if (this.#stopped) return { end: true };
    if (error !== undefined) throw new Error(`gave up on the connection: ${error.message}`);
    if (code === 1000) return { end: true };
    return { subscribed, reason: `connection closed (code ${code}${reason ? `: ${reason}` : ''})` };
  }

  #resumePoints() {
    if (this.#lastSeq.size === 0) return {};
    return { resume: Object.fromEntries(this.#lastSeq), epoch: this.#epoch };
  }

  // Exponential from initialMs (after a lost connection) by failed attempt,
  // capped at maxMs, each wait drawn from the upper half of its ceiling so
  // that clients cut off together do not all come back at the same instant.
  #delay(failures) {
    const { initialMs, maxMs } = this.#backoff;
    const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(failures, 30));
    return Math.round(ceiling / 2 + (this.#random() * ceiling) / 2);
  }

  #onAck(ack, resumed) {
    if (ack.op !== 'subscribe') return;
    if (typeof ack.epoch === 'string') {
      if (this.#epoch !== null && ack.epoch !== this.#epoch) {
        // Numbers of another space are no resume points and no order: the
        // hub has flagged its snapshots of the resumed symbols `reset`.
        this.#lastSeq.clear();
        this.#epochChanges += 1;
      }
      this.#epoch = ack.epoch;
    }
    const unseen = Array.isArray(ack.unseen) ? ack.unseen.filter((symbol) => typeof symbol === 'string') : [];
    invoke(this.#onSubscribed, { ack, epoch: this.#epoch, unseen, resumed });
  }

  #deliver(record, sendTs) {
    if (record.type === 'quote' || record.type === 'trade') {
      const last = this.#lastSeq.get(record.symbol);
      if (record.flags.reset) {
        this.#resets += 1;
      } else if (last !== undefined && record.seq <= last) {
        this.#duplicates += 1;
        return;
      }
      this.#lastSeq.set(record.symbol, record.seq);
    }
    invoke(this.#onRecord, record, { sendTs, epoch: this.#epoch });
  }
}

// A throwing callback must not stop the follower: report it as uncaught,
// asynchronously, and carry on.
function invoke(callback, ...args) {
  try {
    callback(...args);
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}
