/**
 * The demo page behind `npm start`, in a real browser: Debian's Chromium
 * (`apt-get install chromium`) driven by playwright-core, at a phone's and a
 * desktop's width.
 *
 * Without /usr/bin/chromium the test is skipped on a developer machine and
 * fails when `CI=true`. With `DEMO_SCREENSHOTS=<directory>` it also saves a
 * full-page screenshot per viewport there (demo-390.png, demo-1280.png).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Express } from 'express';
import { chromium, type Browser, type Page } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const LAUNCH_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const VIEWPORTS = [
  { width: 390, height: 844 },
  { width: 1280, height: 800 },
] as const;
/** Upper bound for one round of the demo (two stores, N requests each); normally well under a second. */
const ROUND_TIMEOUT_MS = 30_000;

interface DemoModule {
  createDemoApp(options: { url: string }): Promise<{ app: Express; store: { close(): Promise<void> } }>;
}

/**
 * The few browser globals that the functions run in the page use: the tests'
 * TypeScript configuration has no DOM library, and adding it would hide DOM
 * globals used by mistake in src/.
 */
interface PageGlobals {
  innerWidth: number;
  document: {
    documentElement: { clientWidth: number; scrollWidth: number };
    body: { querySelectorAll(selector: string): ArrayLike<PageElement> };
    querySelector(selector: string): PageElement | null;
  };
}
interface PageElement {
  tagName: string;
  id: string;
  classList: ArrayLike<string>;
  textContent: string | null;
  disabled?: boolean;
  getBoundingClientRect(): { left: number; right: number; width: number; height: number };
}

/** Everything that went wrong in the page: console errors, page errors, failed or 4xx/5xx requests. */
function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()} (${message.location().url})`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) => {
    problems.push(`request failed: ${request.method()} ${request.url()}: ${request.failure()?.errorText ?? 'unknown'}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.request().method()} ${response.url()}`);
  });
  return problems;
}

/** Fails when the page scrolls sideways, naming the elements that stick out on the right or left. */
async function assertNoHorizontalScroll(page: Page, when: string): Promise<void> {
  const layout = await page.evaluate(() => {
    const { document, innerWidth } = globalThis as unknown as PageGlobals;
    const width = document.documentElement.clientWidth;
    const outside: string[] = [];
    for (const element of Array.from(document.body.querySelectorAll('*'))) {
      const box = element.getBoundingClientRect();
      if (box.width === 0 && box.height === 0) continue;
      if (box.right > width + 0.5 || box.left < -0.5) {
        const name =
          element.tagName.toLowerCase() +
          (element.id ? `#${element.id}` : '') +
          (element.classList.length > 0 ? `.${Array.from(element.classList).join('.')}` : '');
        outside.push(`${name} [${Math.round(box.left)}, ${Math.round(box.right)}]`);
      }
    }
    return { scrollWidth: document.documentElement.scrollWidth, innerWidth, width, outside };
  });
  assert.ok(
    layout.scrollWidth <= layout.innerWidth,
    `${when}: the page scrolls sideways (scrollWidth ${layout.scrollWidth} > innerWidth ${layout.innerWidth})`,
  );
  assert.deepEqual(layout.outside, [], `${when}: elements outside the ${layout.width} px wide page`);
}

async function text(page: Page, selector: string): Promise<string> {
  return ((await page.textContent(selector)) ?? '').trim();
}

/** Sets N the way a person does (select, type) and returns the button's label. */
async function setCount(page: Page, n: number): Promise<string> {
  await page.fill('#n', String(n));
  return text(page, '#fire');
}

/** Clicks Fire and waits until the page says the round is over. */
async function fireRound(page: Page, round: number): Promise<void> {
  await page.click('#fire');
  await page.waitForFunction(
    (r) => {
      const { document } = globalThis as unknown as PageGlobals;
      const status = document.querySelector('#status')?.textContent ?? '';
      const button = document.querySelector('#fire');
      return status.startsWith(`Round ${r} done`) && button !== null && button.disabled === false;
    },
    round,
    { timeout: ROUND_TIMEOUT_MS },
  );
}

/** The "K of N keys kept, L lost" headline of one store's card, checked for consistency. */
async function keptCount(page: Page, prefix: 'smart' | 'memory', n: number): Promise<number> {
  const headline = await text(page, `#panel-${prefix} .result`);
  const match = /^(\d+) of (\d+) (keys?) kept, (none|\d+) lost$/.exec(headline);
  assert.ok(match, `${prefix}: unexpected headline "${headline}"`);
  const [, keptText, sentText, noun, lostText] = match;
  const kept = Number(keptText);
  assert.equal(Number(sentText), n, `${prefix}: "${headline}" should count ${n} sent keys`);
  assert.equal(noun, n === 1 ? 'key' : 'keys', `${prefix}: plural in "${headline}"`);
  assert.ok(kept <= n, `${prefix}: "${headline}" keeps more than it was sent`);
  assert.equal(lostText === 'none' ? 0 : Number(lostText), n - kept, `${prefix}: "${headline}" does not add up`);
  assert.ok(!lostText?.startsWith('0'), `${prefix}: "${headline}" should say "none lost"`);
  assert.equal(await page.locator(`#panel-${prefix} .chip:not(.lost)`).count(), kept, `${prefix}: green chips`);
  assert.equal(await page.locator(`#panel-${prefix} .chip.lost`).count(), n - kept, `${prefix}: struck-through chips`);
  assert.equal(await page.locator(`#panel-${prefix} .error`).isHidden(), true, `${prefix}: an error is shown`);
  return kept;
}

const missing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium)`;

if (missing !== undefined) {
  if (process.env['CI'] === 'true') {
    test('the demo page in Chromium', () => {
      throw new Error(`${missing}; CI=true requires the browser test`);
    });
  } else {
    test('the demo page in Chromium', { skip: missing }, () => undefined);
  }
} else {
  describe('the demo page in Chromium', () => {
    let browser: Browser | undefined;
    let server: Server | undefined;
    let closeStore: (() => Promise<void>) | undefined;
    let base = '';

    before(async () => {
      // @ts-expect-error: the demo is plain JavaScript without declarations
      const { createDemoApp } = (await import('../demo/server.mjs')) as DemoModule;
      const { app, store } = await createDemoApp({ url: 'sqlite::memory:' });
      closeStore = () => store.close();
      const listening = app.listen(0, '127.0.0.1');
      server = listening;
      await new Promise<void>((resolve, reject) => {
        listening.once('listening', resolve);
        listening.once('error', reject);
      });
      base = `http://127.0.0.1:${(listening.address() as AddressInfo).port}`;
      browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS, timeout: 60_000 });
    });

    after(async () => {
      await browser?.close();
      const listening = server;
      if (listening !== undefined) {
        listening.closeAllConnections();
        await new Promise((resolve) => listening.close(resolve));
      }
      await closeStore?.();
    });

    for (const viewport of VIEWPORTS) {
      const name = `${viewport.width}x${viewport.height}`;

      test(`at ${name}: fits the screen, no errors, right plurals, every key kept`, { timeout: 120_000 }, async () => {
        assert.ok(browser, 'the browser did not start');
        // A context of its own: its own cookies, so its own sessions and round numbers.
        const context = await browser.newContext({ viewport });
        try {
          const page = await context.newPage();
          page.setDefaultTimeout(ROUND_TIMEOUT_MS);
          const problems = watchProblems(page);

          await page.goto(`${base}/`, { waitUntil: 'load' });
          assert.equal(await page.evaluate(() => (globalThis as unknown as PageGlobals).innerWidth), viewport.width);
          assert.equal(await page.locator('link[rel="icon"]').count(), 1, 'an icon, so no request for /favicon.ico');
          const favicon = await context.request.get(`${base}/favicon.ico`);
          assert.equal(favicon.status(), 200, '/favicon.ico, for browsers that ask anyway');
          assert.equal(await text(page, '#fire'), 'Fire 20 parallel requests');
          assert.equal(await text(page, '#rounds'), '0 rounds');
          await assertNoHorizontalScroll(page, `${name}, before any round`);

          // One request: singular everywhere.
          assert.equal(await setCount(page, 1), 'Fire 1 parallel request');
          await fireRound(page, 1);
          assert.equal(await text(page, '#status'), 'Round 1 done: 1 request per store, one store after the other.');
          assert.equal(await text(page, '#rounds'), '1 round');
          assert.equal(await text(page, '#panel-smart .result'), '1 of 1 key kept, none lost');
          const memoryKeptOfOne = await keptCount(page, 'memory', 1);
          assert.equal(await keptCount(page, 'smart', 1), 1);

          // Twenty requests: plural everywhere; this store keeps all of them.
          assert.equal(await setCount(page, 20), 'Fire 20 parallel requests');
          await fireRound(page, 2);
          assert.equal(await text(page, '#status'), 'Round 2 done: 20 requests per store, one store after the other.');
          assert.equal(await text(page, '#rounds'), '2 rounds');
          assert.equal(await keptCount(page, 'smart', 20), 20);
          assert.equal(await text(page, '#panel-smart .result'), '20 of 20 keys kept, none lost');
          // MemoryStore usually loses some, but may by chance keep all: only its number must be shown.
          const memoryKept = await keptCount(page, 'memory', 20);
          assert.equal(await text(page, '#tally-smart'), '21 / 21');
          assert.equal(await text(page, '#tally-memory'), `${memoryKeptOfOne + memoryKept} / 21`);
          assert.equal(await text(page, '#pct-smart'), '100.0 %');

          // The headlines say something the card titles do not.
          for (const prefix of ['smart', 'memory'] as const) {
            const title = await text(page, `#panel-${prefix} h2`);
            const headline = await text(page, `#panel-${prefix} .result`);
            assert.ok(!headline.includes(title), `${prefix}: headline "${headline}" repeats the title "${title}"`);
          }

          await assertNoHorizontalScroll(page, `${name}, after two rounds`);

          const directory = process.env['DEMO_SCREENSHOTS'];
          if (directory !== undefined && directory !== '') {
            mkdirSync(directory, { recursive: true });
            await page.screenshot({ path: join(directory, `demo-${viewport.width}.png`), fullPage: true, animations: 'disabled' });
          }

          assert.deepEqual(problems, [], 'console errors, page errors or failed requests');
        } finally {
          await context.close();
        }
      });
    }

    test('your sessions: two browsers sign in, one revokes the other, which is signed out at once', { timeout: 120_000 }, async () => {
      assert.ok(browser, 'the browser did not start');
      // Two contexts: two browsers with cookies of their own, so two sessions of the demo user.
      const laptop = await browser.newContext({ viewport: { width: 1280, height: 900 }, userAgent: 'Laptop Browser (test)' });
      const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, userAgent: 'Phone Browser (test)' });
      try {
        const [onLaptop, onPhone] = [await laptop.newPage(), await phone.newPage()];
        const watched = [watchProblems(onLaptop), watchProblems(onPhone)];
        const state = (page: Page) => text(page, '#devices-state');
        const until = (page: Page, expression: string) => page.waitForFunction(expression, undefined, { timeout: ROUND_TIMEOUT_MS });
        for (const page of [onLaptop, onPhone]) {
          await page.goto(`${base}/`, { waitUntil: 'load' });
          await until(page, "document.querySelector('#devices-state').textContent === 'Not signed in.'");
          await page.click('#signin');
          await until(page, "document.querySelector('#devices-state').textContent.startsWith('Signed in')");
        }
        // The laptop reloads its list: both sessions, its own marked, the phone's with a revoke button and its browser.
        await onLaptop.reload({ waitUntil: 'load' });
        await until(onLaptop, "document.querySelectorAll('#device-rows tr').length === 2");
        assert.equal(await state(onLaptop), 'Signed in as the demo user: 2 sessions.');
        assert.equal(await onLaptop.locator('#device-rows .tag').count(), 1, 'one row is this browser');
        const phoneRow = onLaptop.locator('#device-rows tr', { hasText: 'Phone Browser (test)' });
        assert.equal(await phoneRow.count(), 1, "the phone's session shows its browser");
        await phoneRow.locator('button.revoke').click();
        await until(onLaptop, "document.querySelectorAll('#device-rows tr').length === 1");
        assert.equal(await state(onLaptop), 'Signed in as the demo user: 1 session.');
        // The phone is signed out at once: its next request finds no session.
        await onPhone.reload({ waitUntil: 'load' });
        await until(onPhone, "document.querySelector('#devices-state').textContent === 'Not signed in.'");
        assert.equal(await onPhone.locator('#signin').isVisible(), true);
        // And the laptop is still signed in.
        await onLaptop.reload({ waitUntil: 'load' });
        await until(onLaptop, "document.querySelector('#devices-state').textContent.startsWith('Signed in')");
        assert.deepEqual(watched.flat(), [], 'console errors, page errors or failed requests');
      } finally {
        await laptop.close();
        await phone.close();
      }
    });
  });
}
