// Drives the hub's quote board in a real headless Chromium (Debian's, through
// playwright-core): loads the page, subscribes to a symbol by typing it into
// the page's input, reports the prices the page shows, waits for them to
// change, and saves a screenshot. Prints one JSON line per step for the Rust
// test (tests/quote_board.rs) that publishes the quotes.
//
// usage: node board_check.mjs BOARD_URL SYMBOL SCREENSHOT_PATH

import { chromium } from 'playwright-core';

const [url, symbol, screenshot] = process.argv.slice(2);
if (!url || !symbol || !screenshot) {
  console.error('usage: node board_check.mjs BOARD_URL SYMBOL SCREENSHOT_PATH');
  process.exit(2);
}
const say = (event) => console.log(JSON.stringify(event));

const browser = await chromium.launch({
  executablePath: process.env.QUOTEHUB_CHROMIUM || '/usr/bin/chromium',
  // No sandbox as root in CI; and no background traffic: this machine has no network.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 360 } });
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.setDefaultTimeout(15_000);

  // An empty list: the page starts with nothing, and we subscribe as a person would.
  await page.goto(`${url}?symbols=`);
  await page.waitForFunction(() => document.getElementById('state').textContent === 'connected');
  await page.fill('#symbols', symbol);
  await page.click('#add-button');

  const cell = (field) => `tr[data-symbol="${symbol}"] td[data-field="${field}"]`;
  const read = async () => ({
    bid: await page.textContent(cell('bid')),
    ask: await page.textContent(cell('ask')),
    seq: await page.textContent(cell('seq')),
    latency: await page.textContent(cell('latency')),
  });
  await page.waitForFunction((selector) => document.querySelector(selector)?.textContent !== '', cell('bid'));
  const shown = await read();
  say({ event: 'shown', ...shown });

  // The test publishes a new quote once it has read the line above.
  await page.waitForFunction(
    ([selector, before]) => document.querySelector(selector)?.textContent !== before,
    [cell('seq'), shown.seq],
  );
  say({ event: 'updated', ...(await read()) });

  await page.screenshot({ path: screenshot });
  say({ event: 'screenshot', path: screenshot, pageErrors });
} finally {
  await browser.close();
}
