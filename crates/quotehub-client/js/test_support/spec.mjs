// Reads the test vectors out of SPEC.md itself, so that the tests follow the
// spec and never a copy of it. Kept out of test/, where node --test would run
// it as a test file.
import { readFileSync } from 'node:fs';

export const SPEC_PATH = new URL('../../../quotehub-proto/SPEC.md', import.meta.url);

export function specText() {
  return readFileSync(SPEC_PATH, 'utf8');
}

/** Every `### V<n> ...` vector as name -> Uint8Array, in the spec's order. */
export function specVectors() {
  const vectors = new Map();
  for (const [, name, hex] of specText().matchAll(/^### (V\d+)\b[^\n]*\n+```hex\n([\s\S]*?)```/gm)) {
    const bytes = hex
      .trim()
      .split(/\s+/)
      .map((pair) => {
        if (!/^[0-9a-f]{2}$/i.test(pair)) throw new Error(`vector ${name}: ${JSON.stringify(pair)} is not a hex byte`);
        return parseInt(pair, 16);
      });
    vectors.set(name, Uint8Array.from(bytes));
  }
  return vectors;
}

/** The spec's example of a JSON-form message (the block that starts with `{"type":"records"`). */
export function specJsonExample() {
  const match = /```json\n(\{"type":"records"[\s\S]*?)```/.exec(specText());
  if (match === null) throw new Error(`no JSON-form example in ${SPEC_PATH.pathname}`);
  return match[1];
}

/**
 * The spec's JSON-form examples of the minor-1 records (the block that starts
 * with `{"type":"bar"`), one JSON text per record.
 */
export function specJsonChannelExamples() {
  const match = /```json\n(\{"type":"bar"[\s\S]*?)```/.exec(specText());
  if (match === null) throw new Error(`no bar/bbo JSON example in ${SPEC_PATH.pathname}`);
  return match[1]
    .split(/\n(?=\{)/)
    .map((text) => text.replace(/\n\s*/g, '').trim())
    .filter((text) => text !== '');
}
