// Drives the quote board's Replay controls in a real headless Chromium
// (Debian's, through playwright-core): picks a feed from the hub's list,
// sets the speed and a symbol, presses Start, and reports what the page's
// own replay session showed once it ended. Prints one JSON line per step for
// the Rust test (tests/quote_board.rs).
//
// usage: node replay_check.mjs BOARD_URL FEED SPEED SYMBOL

import { chromium } from 'playwright-core';

const [url, feed, speed, symbol] = process.argv.slice(2);
if (!url || !feed || !speed || !symbol) {
  console.error('usage: node replay_check.mjs BOARD_URL FEED SPEED SYMBOL');
  process.exit(2);
}
const say = (event) => console.log(JSON.stringify(event));

const browser = await chromium.launch({
  executablePath: process.env.QUOTEHUB_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 480 } });
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.setDefaultTimeout(15_000);

  await page.goto(`${url}?symbols=`);
  await page.waitForFunction((name) => [...document.querySelectorAll('#replay-feed option')].some((o) => o.value === name), feed);
  const feeds = await page.$$eval('#replay-feed option', (options) => options.map((o) => o.value));
  say({ event: 'feeds', feeds });

  await page.selectOption('#replay-feed', feed);
  await page.fill('#replay-speed', speed);
  await page.fill('#replay-symbols', symbol);
  await page.click('#replay-start');

  await page.waitForFunction(() => document.getElementById('replay-state').textContent.includes('replay_ended'));
  const cell = (field) => `#replay-rows tr[data-symbol="${symbol}"] td[data-field="${field}"]`;
  say({
    event: 'ended',
    state: await page.textContent('#replay-state'),
    symbols: await page.$$eval('#replay-rows tr', (rows) => rows.map((r) => r.dataset.symbol)),
    seq: await page.textContent(cell('seq')),
    bid: await page.textContent(cell('bid')),
    pageErrors,
  });
} finally {
  await browser.close();
}
