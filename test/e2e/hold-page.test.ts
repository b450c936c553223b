import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artifactPath, launchBrowser, type LaunchedBrowser } from '../helpers/browser.js';
import { rawMail, send } from '../helpers/relay.js';
import { root, startServer, type RunningServer } from '../helpers/server.js';
import { Sink } from '../helpers/sink.js';

/**
 * What a person does on the hold page, in Chromium, against the built server (run
 * `npx vite build` first; `npm test` does): a real SMTP client sends, a real upstream receives.
 */
const ADMIN = { email: 'admin@example.com', password: 'e2e-admin-password' };
let server: RunningServer;
let sink: Sink;
let browser: LaunchedBrowser;
const pageErrors: string[] = [];
const dialogs: string[] = [];

async function sendMail(subject: string, body = 'Hello.\r\n') {
  const raw = rawMail({ from: ADMIN.email, to: ['carol@example.net'], subject, body });
  await send({ port: server.smtpPort, from: ADMIN.email, to: ['carol@example.net'], raw, auth: { user: ADMIN.email, pass: ADMIN.password } });
}

async function newPage(): Promise<Page> {
  const page = await browser.context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (/Content.Security.Policy/i.test(m.text())) pageErrors.push(m.text());
  });
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  return page;
}

async function login(page: Page) {
  await page.goto(`${server.url}/login`);
  if (new URL(page.url()).pathname === '/login') {
    await page.fill('input[name=email]', ADMIN.email);
    await page.fill('input[name=password]', ADMIN.password);
    await Promise.all([page.waitForURL(`${server.url}/mail`), page.click('button[type=submit]')]);
  }
  await page.locator('.live.on').waitFor({ timeout: 10_000 });
}

function row(page: Page, subject: string) {
  return page.locator('article.mail', { has: page.locator('.subject', { hasText: subject }) });
}

beforeAll(async () => {
  const build = path.join(root, 'build', 'index.js');
  if (!existsSync(build)) throw new Error('build/index.js is missing: run `npx vite build` first');
  if (statSync(path.join(root, 'src', 'routes', 'mail', '+page.svelte')).mtimeMs > statSync(build).mtimeMs) {
    throw new Error('the build is older than the sources: run `npx vite build`');
  }
  sink = await new Sink().start();
  server = await startServer({ env: { UPSTREAM_URL: sink.url().href, ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, HOLD_SECONDS: '120' } });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  const code = await server?.stop();
  await sink?.close();
  expect(code).toBe(0);
});

describe('the hold page in Chromium', () => {
  it('sends a visitor to the login first, and says so when the password is wrong', async () => {
    const page = await newPage();
    await page.goto(`${server.url}/`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await page.fill('input[name=email]', ADMIN.email);
    await page.fill('input[name=password]', 'wrong password');
    await page.click('button[type=submit]');
    await expect.poll(() => page.locator('[role=alert]').textContent()).toContain('wrong');
    await page.close();
  });

  it('shows a mail sent over SMTP without a reload, and a discarded one never reaches the upstream', async () => {
    const page = await newPage();
    await login(page);
    const navigations: string[] = [];
    page.on('framenavigated', (f) => navigations.push(f.url()));
    await sendMail('Wrong recipient');
    const mail = row(page, 'Wrong recipient');
    await mail.waitFor({ timeout: 5000 });
    await expect.poll(() => mail.locator('.countdown .left').textContent()).toMatch(/^[12]:\d\d$/);
    await mail.getByRole('button', { name: 'Discard' }).click();
    await expect.poll(() => page.locator('.result').textContent()).toBe('Discarded: Wrong recipient');
    await mail.waitFor({ state: 'detached' });
    expect(navigations).toEqual([]);
    await new Promise((r) => setTimeout(r, 500));
    expect(sink.received.some((m) => m.raw.toString().includes('Wrong recipient'))).toBe(false);
    await page.goto(`${server.url}/mail/history`);
    await expect.poll(() => page.locator('article.mail', { hasText: 'Wrong recipient' }).textContent()).toContain('Discarded');
    await page.close();
  });

  it('delivers at once on Send now, and the mail leaves the list', async () => {
    const page = await newPage();
    await login(page);
    await sendMail('Send me now');
    const mail = row(page, 'Send me now');
    await mail.waitFor();
    await mail.getByRole('button', { name: 'Send now' }).click();
    await sink.waitFor(1);
    expect(sink.received[0]!.raw.toString()).toContain('Subject: Send me now');
    await mail.waitFor({ state: 'detached' });
    await page.close();
  });

  it('asks how many before Discard all, and discards them all', async () => {
    const page = await newPage();
    await login(page);
    await sendMail('Bulk one');
    await sendMail('Bulk two');
    await row(page, 'Bulk two').waitFor();
    await page.getByRole('button', { name: 'Discard all' }).click();
    const dialog = page.locator('dialog[open]');
    await expect.poll(() => dialog.textContent()).toContain('Discard 2 held mail(s)?');
    // Keyboard only: Tab from Cancel to Yes, Enter.
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('.result').textContent()).toBe('Discarded 2 mail(s).');
    await expect.poll(() => page.locator('article.mail').count()).toBe(0);
    expect(sink.received.some((m) => /Bulk (one|two)/.test(m.raw.toString()))).toBe(false);
    await page.close();
  });

  it('shows a subject made of markup as text, runs none of it, and makes a right-to-left override visible', async () => {
    const page = await newPage();
    await login(page);
    const evil = '<img src=x onerror=alert(1)>';
    await sendMail(evil);
    await sendMail('=?UTF-8?B?' + Buffer.from('invoice\u202Efdp.exe').toString('base64') + '?=');
    const mail = row(page, evil);
    await mail.waitFor();
    expect(await mail.locator('.subject a').textContent()).toBe(evil);
    expect(await page.locator('article.mail img').count()).toBe(0);
    const rlo = row(page, 'invoice');
    await rlo.waitFor();
    expect(await rlo.locator('mark.hidden-char').textContent()).toBe('RLO');
    await mail.locator('.subject a').click();
    await page.waitForURL(/\/mail\/[0-9a-f-]{36}$/);
    expect(await page.locator('h1').textContent()).toBe(evil);
    expect(await page.locator('pre.preview').textContent()).toBe('Hello.\n');
    await page.waitForTimeout(300);
    expect(dialogs).toEqual([]);
    expect(pageErrors).toEqual([]);
    await page.close();
  });

  it('lets the admin set the hold time and the exclusions, refusing what is not valid', async () => {
    const page = await newPage();
    await login(page);
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.waitForURL(`${server.url}/settings`);
    await page.locator('input[name=holdSeconds]').fill('45');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => page.locator('.result').textContent()).toBe('Saved.');
    const senders = page.locator('section.exclusion', { has: page.locator('h3', { hasText: 'Sender exclusions' }) });
    await senders.locator('input').fill('not an address');
    await senders.getByRole('button', { name: 'Add' }).click();
    await expect.poll(() => page.locator('.result').textContent()).toContain('not an address or domain');
    await senders.locator('input').fill('Partner.Example');
    await senders.getByRole('button', { name: 'Add' }).click();
    await expect.poll(() => senders.locator('li .value').allTextContents()).toEqual(['partner.example']);
    await page.goto(`${server.url}/mail`);
    await expect.poll(() => page.locator('dl.status').textContent()).toContain('45 s');
    expect(pageErrors).toEqual([]);
    await page.close();
  });

  it('speaks Japanese to a Japanese browser, and English after the switch', async () => {
    const ja = await launchBrowser({ locale: 'ja-JP' });
    try {
      const page = await ja.context.newPage();
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await page.goto(`${server.url}/login`);
      expect(await page.locator('h1').textContent()).toBe('ログイン');
      await page.getByLabel('メールアドレス').fill(ADMIN.email);
      await page.getByLabel('パスワード').fill(ADMIN.password);
      await Promise.all([page.waitForURL(`${server.url}/mail`), page.getByRole('button', { name: 'ログイン' }).click()]);
      expect(await page.locator('html').getAttribute('lang')).toBe('ja');
      expect(await page.locator('h1').textContent()).toBe('保留メール');
      await page.getByRole('button', { name: '全てのメールを廃棄' }).waitFor();
      await page.getByRole('button', { name: 'English' }).click();
      await page.waitForFunction(() => document.documentElement.lang === 'en');
      expect(await page.locator('h1').textContent()).toBe('Held mail');
      await page.getByRole('button', { name: '日本語' }).click();
      await page.waitForFunction(() => document.documentElement.lang === 'ja');
      expect(await page.locator('h1').textContent()).toBe('保留メール');
    } finally {
      await ja.close();
    }
  });

  it('fits a 360 px wide phone screen, in the dark too, and keeps a screenshot', async () => {
    const phone = await launchBrowser({ viewport: { width: 360, height: 740 }, colorScheme: 'dark' });
    try {
      const page = await phone.context.newPage();
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await page.goto(`${server.url}/login`);
      await page.fill('input[name=email]', ADMIN.email);
      await page.fill('input[name=password]', ADMIN.password);
      await Promise.all([page.waitForURL(`${server.url}/mail`), page.click('button[type=submit]')]);
      await sendMail('A long subject line that has to wrap on a small phone screen without scrolling sideways');
      await row(page, 'A long subject line').waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(overflow).toBe(0);
      expect(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe('rgb(18, 19, 22)');
      await page.screenshot({ path: artifactPath('hold-page-phone-360.png'), fullPage: true });
      expect(existsSync(artifactPath('hold-page-phone-360.png'))).toBe(true);
    } finally {
      await phone.close();
    }
    expect(pageErrors).toEqual([]);
  });
});
