// Drives the hub's quote board in a real headless Chromium (Debian's, through
// playwright-core) through what happens to its connection: a hub that needs
// an API key, a hub that restarts under the open page, and `*`. Prints one
// JSON line per step for the Rust test (tests/quote_board.rs), which acts on
// the hub between steps; each step waits on what the page shows.
//
// usage: node board_session_check.mjs keys BOARD_URL SYMBOL KEY
//        node board_session_check.mjs restart BOARD_URL
//        node board_session_check.mjs wildcard BOARD_URL SYMBOL_COUNT

import { chromium } from 'playwright-core';

const [mode, url, ...rest] = process.argv.slice(2);
const usage = 'usage: node board_session_check.mjs (keys BOARD_URL SYMBOL KEY | restart BOARD_URL | wildcard BOARD_URL COUNT)';
if (!mode || !url) {
  console.error(usage);
  process.exit(2);
}
const say = (event) => console.log(JSON.stringify(event));

const browser = await chromium.launch({
  executablePath: process.env.QUOTEHUB_CHROMIUM || '/usr/bin/chromium',
  // No sandbox as root in CI; and no background traffic: this machine has no network.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const pageErrors = [];

// A page in a context of its own: a new tab's session storage starts empty.
async function openPage(path) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 480 } });
  const page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.setDefaultTimeout(15_000);
  await page.goto(new URL(path, url).toString());
  return page;
}

const connection = (page, wanted) =>
  page.waitForFunction((state) => document.body.dataset.connection === state, wanted);

// Every row of the quotes table, as shown.
const rows = (page) =>
  page.$$eval('#rows tr', (trs) =>
    trs.map((tr) => {
      const text = (field) => tr.querySelector(`[data-field="${field}"]`)?.textContent ?? null;
      return {
        symbol: tr.dataset.symbol,
        bid: text('bid'),
        ask: text('ask'),
        seq: text('seq'),
        note: text('note'),
        classes: [...tr.classList],
      };
    }),
  );

const cellText = (page, symbol, field) =>
  page.textContent(`#rows tr[data-symbol="${symbol}"] td[data-field="${field}"]`);
const filled = (page, symbol, field) =>
  page.waitForFunction(
    ([s, f]) => (document.querySelector(`#rows tr[data-symbol="${s}"] td[data-field="${f}"]`)?.textContent ?? '') !== '',
    [symbol, field],
  );

async function keys(symbol, key) {
  const page = await openPage(`?symbols=${symbol}`);
  await connection(page, 'needs-key');
  say({ event: 'needs-key', state: await page.textContent('#state'), bid: await cellText(page, symbol, 'bid') });

  await page.fill('#api-key', key);
  await page.click('#key-button');
  await filled(page, symbol, 'bid');
  say({
    event: 'shown-after-key',
    bid: await cellText(page, symbol, 'bid'),
    stored: await page.evaluate(() => sessionStorage.getItem('quotehub.apiKey')),
  });

  await page.reload();
  await filled(page, symbol, 'seq');
  say({ event: 'shown-after-reload', seq: await cellText(page, symbol, 'seq') });

  const fresh = await openPage(`?symbols=${symbol}&api_key=${encodeURIComponent(key)}`);
  await filled(fresh, symbol, 'seq');
  say({ event: 'shown-with-url-key', seq: await cellText(fresh, symbol, 'seq'), url: fresh.url() });

  const wrong = await openPage(`?symbols=${symbol}&api_key=not-the-key`);
  await connection(wrong, 'needs-key');
  say({ event: 'needs-key', state: await wrong.textContent('#state'), pageErrors });
}

// Subscribes AAPL, MSFT and ZZZZ; the Rust test publishes AAPL and MSFT,
// never ZZZZ, then restarts the hub with AAPL at a lower number, then
// publishes MSFT and AAPL once more.
async function restart() {
  const page = await openPage('?symbols=AAPL,MSFT,ZZZZ');
  await filled(page, 'AAPL', 'seq');
  await filled(page, 'MSFT', 'seq');
  await page.waitForSelector('#rows tr.unknown[data-symbol="ZZZZ"]');
  say({ event: 'shown', rows: await rows(page) });

  await connection(page, 'down');
  // For a person to see what "greyed out" looks like (the Rust test runs this in the repository).
  await page.screenshot({ path: 'target/test-output/quote-board-down.png' });
  say({ event: 'down', rows: await rows(page), state: await page.textContent('#state') });

  await connection(page, 'open');
  await page.waitForSelector('#rows tr[data-symbol="AAPL"]:not(.stale)');
  // Read before saying so: the test publishes as soon as it reads the line.
  const back = await rows(page);
  say({ event: 'back', rows: back, state: await page.textContent('#state') });
  const before = back.find((row) => row.symbol === 'AAPL').seq;

  await filled(page, 'MSFT', 'seq');
  await page.waitForFunction(
    (seq) => document.querySelector('#rows tr[data-symbol="AAPL"] td[data-field="seq"]').textContent !== seq,
    before,
  );
  say({
    event: 'live',
    rows: await rows(page),
    applied: await page.evaluate(() => window.quotehubBoard.applied),
    pageErrors,
  });
}

async function wildcard(count) {
  const page = await openPage('?symbols=*');
  await page.waitForFunction((n) => document.getElementById('wildcard-note').textContent.includes(` of ${n} `), count);
  const report = async (event) => ({
    event,
    rowCount: await page.$$eval('#rows tr', (trs) => trs.length),
    note: await page.textContent('#wildcard-note'),
    rows: await rows(page),
    pageErrors,
  });
  const shown = await report('shown');
  say(shown);
  const before = shown.rows.find((row) => row.symbol === 'S000')?.seq;
  await page.waitForFunction(
    (seq) => document.querySelector('#rows tr[data-symbol="S000"] td[data-field="seq"]')?.textContent !== seq,
    before,
  );
  say(await report('updated'));
}

try {
  if (mode === 'keys' && rest.length === 2) await keys(...rest);
  else if (mode === 'restart' && rest.length === 0) await restart();
  else if (mode === 'wildcard' && rest.length === 1) await wildcard(rest[0]);
  else {
    console.error(usage);
    process.exitCode = 2;
  }
} finally {
  await browser.close();
}
