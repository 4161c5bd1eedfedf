// Drives the hub's quote board in a real headless Chromium (Debian's, through
// playwright-core) while the Rust test (tests/quote_board.rs) replays the
// bundled feed into the hub: opens the board on SYMBOLS, selects SYMBOL's
// chart, waits for BARS 1 s bars of it, then reports what the page received
// and what its chart and rows show, sorts by clicking headers, switches the
// chart to 1 min bars, and saves a screenshot. One JSON line per step.
//
// usage: node board_candles_check.mjs BOARD_URL SYMBOLS(comma-separated) SYMBOL BARS SCREENSHOT_PATH

import { chromium } from 'playwright-core';

const [url, symbols, symbol, bars, screenshot] = process.argv.slice(2);
if (!url || !symbols || !symbol || !bars || !screenshot) {
  console.error('usage: node board_candles_check.mjs BOARD_URL SYMBOLS SYMBOL BARS SCREENSHOT_PATH');
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
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.setDefaultTimeout(15_000);

  await page.goto(`${url}?symbols=${encodeURIComponent(symbols.split(',').join(' '))}`);
  await page.waitForFunction(() => document.getElementById('state').textContent.startsWith('subscribed to'));
  await page.click(`#rows tr[data-symbol="${symbol}"] td[data-field="symbol"]`);
  await page.waitForFunction((s) => window.__board?.selected() === s, symbol);
  say({ event: 'subscribed' });

  // What the page received of the shown interval, and what its chart plots.
  const chart = () =>
    page.evaluate((s) => ({
      interval: window.__board.interval(),
      bars: window.__board.bars(s),
      candles: window.__board.candles(s),
      volumes: window.__board.volumes(s),
    }), symbol);
  const rows = () =>
    page.evaluate(() =>
      [...document.querySelectorAll('#rows tr')].map((tr) => {
        const out = { symbol: tr.dataset.symbol };
        for (const td of tr.querySelectorAll('td[data-field]')) out[td.dataset.field] = td.textContent;
        return out;
      }),
    );
  const order = () => page.evaluate(() => [...document.querySelectorAll('#rows tr')].map((tr) => tr.dataset.symbol));

  // The test closes the last bar after the replay; the feed's last quotes came before it.
  await page.waitForFunction(([s, n]) => window.__board.bars(s).length >= n, [symbol, Number(bars)], { timeout: 60_000 });
  say({ event: 'candles', ...(await chart()), rows: await rows() });

  const sortBy = async (key) => {
    await page.click(`th[data-sort="${key}"]`);
    return order();
  };
  const spreadUp = await sortBy('spread');
  const spreadDown = await sortBy('spread');
  const changeUp = await sortBy('changePct');
  const lastUp = await sortBy('last');
  const symbolUp = await sortBy('symbol');
  say({ event: 'sorted', spreadUp, spreadDown, changeUp, lastUp, symbolUp });

  await page.click('#interval-1m');
  await page.waitForFunction((s) => window.__board.interval() === '1m' && window.__board.candles(s).length > 0, symbol);
  say({ event: 'minute', ...(await chart()) });

  await page.click('#interval-1s');
  await page.waitForFunction((s) => window.__board.interval() === '1s' && window.__board.candles(s).length > 0, symbol);
  // Let the chart paint its canvas before the picture.
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
  await page.screenshot({ path: screenshot, fullPage: true });
  say({ event: 'screenshot', path: screenshot, pageErrors });
} finally {
  await browser.close();
}
