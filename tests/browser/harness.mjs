// tests/browser/harness.mjs: what every browser test script shares: its
// steps (one PASS/FAIL line each, and the "N passed, N failed" summary),
// assert and same, and Debian's Chromium started headless in a profile of
// its own (CHROMIUM overrides the path).

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

let passed = 0;
let failed = 0;

// Runs one step; a failed step is reported and thrown on, so a script
// stops at its first failure.
export const step = async (name, fn) => {
  const t = Date.now();
  try {
    await fn();
    passed++;
    console.log(`PASS: ${name} (${((Date.now() - t) / 1000).toFixed(2)} s)`);
  } catch (e) {
    failed++;
    // fetch() says only "fetch failed"; the reason is its cause.
    const cause = e && e.cause ? `\n  caused by: ${e.cause.stack || e.cause}` : '';
    console.log(`FAIL: ${name}: ${e && e.stack ? e.stack : e}${cause}`);
    throw e;
  }
};

export const assert = (cond, msg) => { if (!cond) throw new Error(msg); };

// Deep equality through JSON; the message shows both sides, each cut at
// cut characters (for large arrays).
export const same = (a, b, msg, cut = Infinity) => {
  const x = JSON.stringify(a);
  const y = JSON.stringify(b);
  if (x !== y) throw new Error(`${msg}:\n  got      ${x.slice(0, cut)}\n  expected ${y.slice(0, cut)}`);
};

// Chromium with a fresh profile (userDir: remove it when done) and its
// first page, whose actions wait at most timeout ms.
export async function launch({ viewport = { width: 1360, height: 900 }, timeout = 15000 } = {}) {
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-chromium-'));
  const context = await chromium.launchPersistentContext(userDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport,
    timeout: 60000,
  });
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(timeout);
  return { userDir, context, page };
}

// Content-Security-Policy violations of every page of context (embedded
// frames too): the securitypolicyviolation events, which an init script
// writes to the console, and Chromium's own console messages. Returns
// the array they are collected in.
export async function watchCsp(context, page) {
  const violations = [];
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.effectiveDirective} blocked ${e.blockedURI || 'inline code'} `
        + `(${e.sourceFile || document.URL}:${e.lineNumber})`);
    });
  });
  page.on('console', (m) => {
    if (/Content Security Policy|CSP violation/.test(m.text())) violations.push(m.text());
  });
  return violations;
}

// Prints the summary and exits: 1 when a step failed or exitCode is set.
export function finish(exitCode) {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(exitCode || (failed ? 1 : 0));
}
