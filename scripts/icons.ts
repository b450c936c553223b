// Renders the app icons (static/icons/*.png) from the SVG below with Chromium:
//   npx tsx scripts/icons.ts
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'static', 'icons');

/** An envelope under a clock hand: mail that waits. `inset` shrinks the drawing (maskable safe zone). */
function svg(opts: { rounded: boolean; inset: number }): string {
  const s = 1 - 2 * opts.inset;
  const t = 512 * opts.inset;
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 512 512" width="512" height="512">
  <rect width="512" height="512" rx="${opts.rounded ? 112 : 0}" fill="#1e3a8a"/>
  <g transform="translate(${t} ${t}) scale(${s})">
    <rect x="88" y="150" width="336" height="236" rx="28" fill="#ffffff"/>
    <path d="M104 172 L256 284 L408 172" fill="none" stroke="#1e3a8a" stroke-width="26" stroke-linecap="round" stroke-linejoin="round"/>
    <circle cx="376" cy="366" r="92" fill="#f59e0b" stroke="#1e3a8a" stroke-width="18"/>
    <path d="M376 316 V366 L410 388" fill="none" stroke="#1e3a8a" stroke-width="20" stroke-linecap="round" stroke-linejoin="round"/>
  </g>
</svg>`;
}

const targets = [
  { file: 'icon-192.png', size: 192, rounded: true, inset: 0 },
  { file: 'icon-512.png', size: 512, rounded: true, inset: 0 },
  { file: 'maskable-512.png', size: 512, rounded: false, inset: 0.14 },
  { file: 'apple-touch-icon.png', size: 180, rounded: false, inset: 0.06 },
];

/** The notification badge (Android shows only its alpha): the envelope alone. */
const badge = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 512 512" width="96" height="96">
  <mask id="cut"><rect width="512" height="512" fill="#fff"/>
    <path d="M64 140 L256 282 L448 140" fill="none" stroke="#000" stroke-width="34" stroke-linecap="round" stroke-linejoin="round"/></mask>
  <rect x="40" y="110" width="432" height="300" rx="36" fill="#fff" mask="url(#cut)"/>
</svg>`;

writeFileSync(path.join(out, 'icon.svg'), svg({ rounded: true, inset: 0 }));
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
try {
  for (const t of targets) {
    const page = await browser.newPage({ viewport: { width: t.size, height: t.size } });
    const img = svg(t).replace('width="512" height="512"', `width="${t.size}" height="${t.size}"`);
    await page.setContent(`<html><body style="margin:0;background:transparent">${img}</body></html>`);
    await page.screenshot({ path: path.join(out, t.file), omitBackground: true });
    await page.close();
  }
  const page = await browser.newPage({ viewport: { width: 96, height: 96 } });
  await page.setContent(`<html><body style="margin:0;background:transparent">${badge}</body></html>`);
  await page.screenshot({ path: path.join(out, 'badge-96.png'), omitBackground: true });
} finally {
  await browser.close();
}
console.log('icons written to', out);
