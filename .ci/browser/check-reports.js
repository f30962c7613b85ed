// Loads every cbflow HTML report of a directory in headless Chromium and fails on console
// errors, page errors, failed or non-local requests, broken images and external resources.
// Saves a full-page screenshot of each report, and one per top-level section, as artefacts.
//
// usage: node check-reports.js REPORT_DIR ARTEFACT_DIR
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

async function checkReport(context, file, artefacts) {
  const problems = [];
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('requestfailed', (req) => problems.push(`request failed: ${req.url().slice(0, 120)}`));
  page.on('request', (req) => {
    const u = req.url();
    if (!u.startsWith('file:') && !u.startsWith('data:')) problems.push(`network request: ${u}`);
  });
  await page.goto('file://' + path.resolve(file), { waitUntil: 'load', timeout: 60000 });
  const facts = await page.evaluate(() => ({
    images: document.images.length,
    broken: Array.from(document.images)
      .filter((i) => !i.complete || i.naturalWidth === 0 || i.naturalHeight === 0)
      .map((i) => i.alt || i.src.slice(0, 60)),
    external: Array.from(document.querySelectorAll('script[src], link[href], iframe, object, embed'))
      .map((e) => e.outerHTML.slice(0, 80)),
    sections: Array.from(document.querySelectorAll('main > section[id]')).map((s) => s.id),
    title: document.title,
  }));
  for (const b of facts.broken) problems.push(`broken image: ${b}`);
  for (const e of facts.external) problems.push(`external resource: ${e}`);
  if (facts.images === 0) problems.push('no image in the report');
  const base = path.basename(file, '.html');
  await page.screenshot({ path: path.join(artefacts, `${base}.png`), fullPage: true });
  fs.mkdirSync(path.join(artefacts, base), { recursive: true });
  for (const id of facts.sections) {
    const el = await page.$(`section#${id}`);
    if (el) await el.screenshot({ path: path.join(artefacts, base, `${id}.png`) });
  }
  await page.close();
  return { problems, facts };
}

async function main() {
  const [reportDir, artefacts] = process.argv.slice(2);
  if (!reportDir || !artefacts) {
    console.error('usage: node check-reports.js REPORT_DIR ARTEFACT_DIR');
    process.exit(2);
  }
  const reports = fs.readdirSync(reportDir)
    .filter((f) => /^(sub-[A-Za-z0-9]+|group)\.html$/.test(f))
    .sort()
    .map((f) => path.join(reportDir, f));
  if (!reports.some((r) => r.endsWith('group.html'))) {
    console.error(`${reportDir}: no group.html`);
    process.exit(1);
  }
  if (!reports.some((r) => /sub-[^/]+\.html$/.test(r))) {
    console.error(`${reportDir}: no sub-<label>.html`);
    process.exit(1);
  }
  fs.mkdirSync(artefacts, { recursive: true });
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbflow-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: FLAGS,
    viewport: { width: 1400, height: 1000 },
    offline: true,
  });
  let failed = 0;
  try {
    for (const r of reports) {
      const { problems, facts } = await checkReport(context, r, artefacts);
      const status = problems.length === 0 ? 'ok' : 'FAILED';
      console.log(`${path.basename(r)}: ${status} (${facts.images} images, sections: ${facts.sections.join(', ')})`);
      for (const p of problems) console.log(`  ${p}`);
      if (problems.length > 0) failed += 1;
    }
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  if (failed > 0) {
    console.error(`${failed} of ${reports.length} reports failed the browser check`);
    process.exit(1);
  }
  console.log(`all ${reports.length} reports passed; screenshots in ${artefacts}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
