#!/usr/bin/env node
// A third-party client of a running hub: the npm `ws` package through
// follow() (follow.mjs). Subscribes to SYMBOL..., prints the ack as one JSON
// line, then each record as one JSON line in the spec's JSON form (prices as
// exact decimal strings, integers as integers) until --count records, and
// exits 0. A lost connection is opened again and resumed: the new ack is
// printed (its epoch names the sequence space of the records after it) and
// a symbol whose records were lost comes back as a snapshot flagged "reset".
// Symbols no feed has sent yet are named on stderr. Errors, a refused
// subscription or key, a normal close by the hub or the --timeout bound exit
// 1 with a message on stderr; bad arguments exit 2.
//
//   node live_client.mjs ws://127.0.0.1:8080/v1/quotes AAPL BRK.B --count 5 [--json]
import { parseArgs } from 'node:util';

import WebSocket from 'ws';

import { follow } from './follow.mjs';
import { BINARY_PROTOCOL, JSON_PROTOCOL } from './quotehub.mjs';

const USAGE = 'usage: node live_client.mjs URL SYMBOL... [--count N] [--timeout SECONDS] [--json]';

function fail(message, status = 1) {
  process.stderr.write(`live_client.mjs: ${message}\n`);
  process.exit(status);
}

function parseArguments() {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        count: { type: 'string', default: '10' },
        timeout: { type: 'string', default: '20' },
        // Reads the JSON sub-protocol instead, to check it against the binary one.
        json: { type: 'boolean', default: false },
      },
    });
  } catch (error) {
    fail(`${error.message}\n${USAGE}`, 2);
  }
  const { values, positionals } = parsed;
  const [url, ...symbols] = positionals;
  const count = Number(values.count);
  const timeout = Number(values.timeout);
  if (url === undefined || symbols.length === 0) fail(USAGE, 2);
  if (!Number.isSafeInteger(count) || count < 1) fail(`--count must be a positive integer, got ${values.count}`, 2);
  if (!(timeout > 0)) fail(`--timeout must be a positive number of seconds, got ${values.timeout}`, 2);
  return { url, symbols, count, timeout, protocol: values.json ? JSON_PROTOCOL : BINARY_PROTOCOL };
}

const flagNames = (flags) => Object.keys(flags).filter((name) => flags[name]);

// The record in the spec's JSON form, so that every client prints the same lines.
function jsonForm(record) {
  switch (record.type) {
    case 'quote':
      return {
        type: 'quote',
        sym: record.symbol,
        seq: record.seq,
        bp: record.bidPrice,
        bs: record.bidSize,
        ap: record.askPrice,
        as: record.askSize,
        t: record.eventTs,
        recv_ts: record.recvTs,
        flags: flagNames(record.flags),
        conflated: record.conflated,
      };
    case 'trade':
      return {
        type: 'trade',
        sym: record.symbol,
        seq: record.seq,
        p: record.price,
        s: record.size,
        t: record.eventTs,
        recv_ts: record.recvTs,
        flags: flagNames(record.flags),
      };
    case 'status':
      return {
        type: 'status',
        code: record.name,
        code_num: record.code,
        feed: record.feed,
        ts: record.ts,
        detail: record.detail,
      };
    default:
      return { type: 'unknown', rtype: record.rtype, length: record.length };
  }
}

// JSON.stringify throws on BigInt; the records are flat, so write them field by field.
function jsonLine(object) {
  const fields = Object.entries(object).map(
    ([key, value]) => `${JSON.stringify(key)}:${typeof value === 'bigint' ? value.toString() : JSON.stringify(value)}`,
  );
  return `{${fields.join(',')}}\n`;
}

async function main() {
  const { url, symbols, count, timeout, protocol } = parseArguments();
  let printed = 0;
  const deadline = setTimeout(
    () => fail(`timed out after ${timeout} s with ${printed} of ${count} records`),
    timeout * 1000,
  );
  // A keyed hub's key, in the Authorization header.
  const apiKey = process.env.QUOTEHUB_API_KEY || undefined;
  let follower;
  try {
    follower = follow(url, symbols, {
      WebSocket,
      protocol,
      apiKey,
      // One ack line per connection: the records after it are numbered in its epoch.
      onSubscribed: ({ ack, unseen }) => {
        process.stdout.write(`${JSON.stringify(ack)}\n`);
        for (const symbol of unseen) process.stderr.write(`${symbol}: no data yet from any feed\n`);
      },
      onReconnecting: ({ attempt, delayMs, reason }) =>
        process.stderr.write(`live_client.mjs: ${reason}; reconnecting in ${delayMs} ms (attempt ${attempt})\n`),
      onRecord: (record) => {
        if (printed === count) return;
        if (record.flags?.reset) {
          process.stderr.write(`live_client.mjs: ${record.symbol} reset at ${record.seq}: records were lost\n`);
        }
        process.stdout.write(jsonLine(jsonForm(record)));
        printed += 1;
        if (printed === count) follower.close();
      },
    });
  } catch (error) {
    fail(error.message, 2);
  }
  try {
    await follower.done;
  } catch (error) {
    fail(error.message);
  }
  if (printed < count) fail(`the hub closed the connection after ${printed} of ${count} records`);
  clearTimeout(deadline);
}

await main();
