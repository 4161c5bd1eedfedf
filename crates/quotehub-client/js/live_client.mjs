#!/usr/bin/env node
// A third-party client of a running hub: the npm `ws` package through
// QuotehubClient. Subscribes to SYMBOL..., prints the ack as one JSON line,
// then each record as one JSON line in the spec's JSON form (prices as exact
// decimal strings, integers as integers) until --count records, and exits 0.
// Errors, an early close or the --timeout bound exit 1 with a message on
// stderr; bad arguments exit 2.
//
//   node live_client.mjs ws://127.0.0.1:8080/v1/quotes AAPL BRK.B --count 5 [--json]
import { parseArgs } from 'node:util';

import WebSocket from 'ws';

import { BINARY_PROTOCOL, JSON_PROTOCOL, QuotehubClient } from './quotehub.mjs';

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
  const client = new QuotehubClient(url, { WebSocket, protocol, apiKey });
  const print = (record) => {
    if (printed === count) return;
    process.stdout.write(jsonLine(jsonForm(record)));
    printed += 1;
    if (printed === count) client.close();
  };
  // `ws` emits the messages of one read back to back, before the ack's promise
  // continuation runs: hold records until the ack line is out, to keep the hub's order.
  let early = [];
  client.onRecord((record) => (early === null ? print(record) : early.push(record)));
  client.onClose(({ code, reason, error }) => {
    if (printed === count) {
      clearTimeout(deadline);
      return;
    }
    if (error !== undefined) fail(`gave up on the connection: ${error.message}`);
    fail(
      `the hub closed the connection (code ${code}${reason ? `: ${reason}` : ''}) after ${printed} of ${count} records`,
    );
  });
  try {
    await client.connect();
  } catch (error) {
    fail(error.message);
  }
  try {
    const ack = await client.subscribe(symbols);
    process.stdout.write(`${JSON.stringify(ack)}\n`);
  } catch (error) {
    fail(
      error.code === undefined ? error.message : `the hub refused the subscription: ${error.code}: ${error.message}`,
    );
  }
  const held = early;
  early = null;
  held.forEach(print);
}

await main();
