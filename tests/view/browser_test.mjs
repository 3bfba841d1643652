// `steper view` in a real browser: Debian's headless Chromium driven through
// puppeteer-core. Writes questions, corpus and three methods' traces whose
// outcomes follow known rules, makes the page with the steper binary, and
// checks what a user would: no console errors, the metrics, the number of
// cards, that filters, summary links, disagreement shortcuts, search and
// shared links give the right questions, and that side by side aligns steps.
//   node browser_test.mjs STEPER [SCREENSHOT_DIR]
import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

const [steper, shots] = process.argv.slice(2);
if (!steper) throw new Error('usage: node browser_test.mjs STEPER [SCREENSHOT_DIR]');
const chromium = process.env.STEPER_CHROMIUM || '/usr/bin/chromium';
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'steper-view-'));
process.on('exit', () => fs.rmSync(work, {recursive: true, force: true}));

// ------------------------------------------------------------ the data
let failures = 0;
function check(ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) ++failures;
}
const N = 120;
const types = ['bridge', 'comparison'];
const questions = [], corpus = [];
for (let i = 0; i < N; ++i) {
  const hops = 2 + (i % 2);
  const gold = Array.from({length: hops}, (_, h) => `g${i}_${h}`);
  for (const id of gold) corpus.push({id, title: `Title ${id}`, text: `Gold passage ${id} about question ${i}.`});
  corpus.push({id: `d${i}`, title: `Distractor ${i}`, text: `Nothing useful for ${i}.`});
  questions.push({id: `q${i}`, question: `Question number ${i} about item ${i * 7}?`, answers: [`answer${i}`],
    type: types[i % 5 === 0 ? 1 : 0], supporting_ids: gold});
}
// Each method's rule: right on question i or not; steps; stop.
const methods = {
  teacher: {right: (i) => i % 4 !== 3, steps: (i) => 2 + (i % 2), stop: () => 'answer'},
  vanilla: {right: (i) => i % 3 === 0, steps: (i) => 1 + (i % 3), stop: (i) => (i % 5 === 4 ? 'max_steps' : 'answer'), missing: (i) => i === N - 1},
  steper: {right: (i) => i % 2 === 0, steps: () => 2, stop: (i) => (i === 7 ? 'error' : 'answer')},
};
const files = [];
for (const [name, m] of Object.entries(methods)) {
  const lines = [];
  for (let i = 0; i < N; ++i) {
    if (m.missing && m.missing(i)) continue;
    const q = questions[i];
    const steps = Array.from({length: m.steps(i)}, (_, k) => ({
      query: `${name} query ${k} for q${i}`,
      retrieved: k < q.supporting_ids.length ? [q.supporting_ids[k], `d${i}`] : [`d${i}`],
      output: `${name} sentence ${k} <about> q${i}.`}));
    const stop = m.stop(i);
    lines.push(JSON.stringify({id: q.id, question: q.question, answers: q.answers, strategy: 'ircot', steps,
      prediction: m.right(i) ? q.answers[0] : `wrong${i}`, stop, ...(stop === 'error' ? {error: 'endpoint refused'} : {})}));
  }
  const file = path.join(work, `${name}.jsonl`);
  fs.writeFileSync(file, lines.join('\n') + '\n');
  files.push(`${name}=${file}`);
}
const write = (name, rows) => fs.writeFileSync(path.join(work, name), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
write('questions.jsonl', questions);
write('corpus.jsonl', corpus);
const page_path = path.join(work, 'view.html');
// The page compressed, as large ones are (the checks below), and plain.
const view = (out, ...more) => execFileSync(steper, ['view', '--traces', ...files, '--questions', path.join(work, 'questions.jsonl'),
  '--corpus', path.join(work, 'corpus.jsonl'), '--out', out, '--title', 'Browser test', ...more], {stdio: 'inherit'});
view(page_path, '--compress-above', '0');
const plain_path = path.join(work, 'plain.html');
view(plain_path);
check(fs.readFileSync(page_path, 'utf8').includes('"encoding":"gzip+base64"') && fs.readFileSync(plain_path, 'utf8').includes('"encoding":"lines"'),
  'one page compressed, one plain');

// What the filters must find, from the rules above.
const count = (pred) => questions.filter((_, i) => pred(i)).length;
const has = (m, i) => !(methods[m].missing && methods[m].missing(i));
const expected = {
  vanillaWrong: count((i) => has('vanilla', i) && !methods.vanilla.right(i)),
  teacherRightVanillaWrong: count((i) => methods.teacher.right(i) && has('vanilla', i) && !methods.vanilla.right(i)),
  steperComparison: count((i) => types[i % 5 === 0 ? 1 : 0] === 'comparison'),
  vanillaStepLimit: count((i) => has('vanilla', i) && methods.vanilla.stop(i) === 'max_steps'),
};

// ------------------------------------------------------------ the browser
const browser = await puppeteer.launch({executablePath: chromium, headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage']});
try {
  const page = await browser.newPage();
  await page.setViewport({width: 1280, height: 800});
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('requestfailed', (r) => errors.push('request failed: ' + r.url()));
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  const url = 'file://' + page_path;
  await page.goto(url, {waitUntil: 'load'});
  // The cards come once the bulk is unpacked.
  await page.waitForFunction(() => document.documentElement.dataset.readyMs, {timeout: 10000});
  const shown = () => page.$eval('#count b', (b) => Number(b.textContent));
  const cards = () => page.$$eval('.card', (c) => c.length);
  async function waitCount(n, what) {
    try {
      await page.waitForFunction((n) => Number(document.querySelector('#count b')?.textContent) === n, {timeout: 5000}, n);
      check(true, `${what}: ${n} questions`);
    } catch {
      check(false, `${what}: expected ${n} questions, the page says ${await shown()}`);
    }
  }

  check(errors.length === 0, 'the page loads with no console errors' + (errors.length ? ': ' + errors.join('; ') : ''));
  check(requests.every((u) => u.startsWith('file://') || u.startsWith('data:')), 'it fetches nothing from elsewhere' + requests.filter((u) => !u.startsWith('file://') && !u.startsWith('data:')).join(' '));
  check(await page.$eval('h1', (h) => h.textContent) === 'Browser test', 'the title');
  const rows = await page.$$eval('#metrics table.metrics tbody tr', (r) => r.map((x) => [...x.children].map((c) => c.textContent.trim())));
  check(rows.length === 3, `the metrics table has a row per method (${rows.length})`);
  const teacherAcc = (100 * count((i) => methods.teacher.right(i)) / N).toFixed(1);
  check(rows[0] && rows[0][0] === 'teacher' && rows[0][4] === teacherAcc, `teacher's Acc is ${teacherAcc} (${rows[0] && rows[0][4]})`);
  check(rows[1] && rows[1][1].startsWith(String(N - 1)) && rows[1][1].includes('1 missing'), `vanilla: ${N - 1} traces, 1 missing (${rows[1] && rows[1][1]})`);
  check(await shown() === N, `the count says all ${N} questions`);
  check(await cards() === 50, `the first 50 cards are rendered, lazily (${await cards()})`);
  if (shots) await page.screenshot({path: path.join(shots, 'summary.png')});
  // Scrolling to the end renders the next 50.
  await page.evaluate(() => document.getElementById('more').scrollIntoView());
  await page.waitForFunction(() => document.querySelectorAll('.card').length === 100, {timeout: 5000}).catch(() => {});
  check(await cards() === 100, `scrolling down renders 50 more (${await cards()})`);

  // A filter click.
  await page.select('#f-method', 'vanilla');
  await page.select('#f-outcome', 'wrong');
  await waitCount(expected.vanillaWrong, 'method vanilla, outcome wrong');
  check(await cards() === Math.min(50, expected.vanillaWrong), 'as many cards, up to a page');
  check((await page.evaluate(() => location.hash)).includes('m=vanilla') && (await page.evaluate(() => location.hash)).includes('outcome=wrong'),
    'the filter is kept in the URL');
  // The same link opened afresh gives the same view.
  const shared = await page.evaluate(() => location.href);
  const page2 = await browser.newPage();
  await page2.goto(shared, {waitUntil: 'load'});
  await page2.waitForFunction(() => document.documentElement.dataset.readyMs, {timeout: 10000});
  check(await page2.$eval('#count b', (b) => Number(b.textContent)) === expected.vanillaWrong, 'a shared link opens the same filter');
  check(await page2.$eval('#f-outcome', (s) => s.value) === 'wrong', 'and shows it in the controls');
  await page2.close();

  // A summary cell: steper's Acc on comparison questions.
  await page.click('#f-reset');
  await waitCount(N, 'reset');
  await page.click(`#metrics a[href="#m=steper&type=comparison"]`);
  await waitCount(expected.steperComparison, "steper's comparison cell");
  await page.click(`#metrics a[href="#m=vanilla&outcome=max_steps"]`);
  await waitCount(expected.vanillaStepLimit, "vanilla's step-limit cell");
  const stops = await page.$$eval('.card .stop', (s) => s.map((x) => x.textContent));
  check(stops.length > 0 && stops.every((s) => s === 'stopped at the step limit'), 'every card shown stopped at the step limit');

  // Expanding a run shows its steps, gold passages starred.
  await page.click('#f-reset');
  await waitCount(N, 'reset');
  await page.type('#f-search', 'item 49?');
  await waitCount(1, 'search for "item 49?" (question 7)');
  await page.click('.card tr.run[data-m="2"]');
  const steps = await page.$$eval('.card tr.steps[data-m="2"]:not([hidden]) .step', (s) => s.length);
  check(steps === 2, `clicking steper's row shows its 2 steps (${steps})`);
  const error = await page.$eval('.card tr.steps[data-m="2"] .final', (f) => f.textContent);
  check(error.includes('stopped by an error') && error.includes('endpoint refused'), `why it stopped: "${error.trim()}"`);
  const gold = await page.$$eval('.card tr.steps[data-m="2"] li.gold', (g) => g.length);
  check(gold === 2, `the gold passages retrieved are starred (${gold})`);
  await page.click('.card tr.steps[data-m="2"] li.gold summary');
  const text = await page.$eval('.card tr.steps[data-m="2"] li.gold details[open] p', (p) => p.textContent);
  check(text === 'Gold passage g7_0 about question 7.', `a passage opens to its text ("${text}")`);
  if (shots) await page.screenshot({path: path.join(shots, 'trace.png')});

  // A disagreement shortcut opens both methods side by side.
  await page.click('#f-reset');
  await waitCount(N, 'reset');
  const chip = await page.$$eval('#presets a', (a) => a.map((x) => [x.textContent, x.getAttribute('href')]));
  const tv = chip.find(([t]) => t === 'teacher ✓ vanilla ✗');
  check(!!tv, 'a shortcut for teacher right, vanilla wrong');
  await page.click(`#presets a[href="${tv[1]}"]`);
  await waitCount(expected.teacherRightVanillaWrong, 'teacher right, vanilla wrong');
  const sbs = await page.$$eval('.card', (cs) => cs.map((c) => {
    const s = c.querySelector('.sbs');
    if (!s) return null;
    return {heads: [...s.querySelectorAll('.head')].map((h) => h.textContent), cells: s.querySelectorAll('.cell').length,
      steps: [...s.querySelectorAll('.cell')].map((x) => x.querySelectorAll('.step').length), q: c.querySelector('.qid').textContent};
  }));
  check(sbs.length > 0 && sbs.every((s) => s && s.heads.join('|') === 'teacher|vanilla'), 'every card shows teacher and vanilla side by side');
  const aligned = sbs.every((s) => {
    const i = Number(s.q.slice(1));
    const n = Math.max(methods.teacher.steps(i), methods.vanilla.steps(i));
    // one row per step plus the final row, two cells each; a cell holds one step or none
    return s.cells === 2 * (n + 1) && s.steps.slice(0, 2 * n).every((k, j) => k === ((j % 2 === 0 ? methods.teacher.steps(i) : methods.vanilla.steps(i)) > Math.floor(j / 2) ? 1 : 0));
  });
  check(aligned, 'their steps are aligned row by row');
  if (shots) {
    await page.evaluate(() => document.querySelector('.card').scrollIntoView());
    await page.screenshot({path: path.join(shots, 'side_by_side.png')});
  }
  // The plain page reads the same.
  const plain = await browser.newPage();
  plain.on('pageerror', (e) => errors.push(String(e)));
  await plain.goto('file://' + plain_path + '#id=q7', {waitUntil: 'load'});
  await plain.waitForSelector('.card tr.steps:not([hidden]) .step');
  check(await plain.$$eval('.card', (c) => c.length) === 1 && await plain.$$eval('.card tr.steps:not([hidden]) .step', (s) => s.length) === 7,
    'the plain page opens a question by its link, every method\'s steps shown (3 + 2 + 2)');
  check(errors.length === 0, 'no console errors after all that' + (errors.length ? ': ' + errors.join('; ') : ''));
} finally {
  await browser.close();
}
console.log(`${failures === 0 ? 'all checks passed' : failures + ' check(s) failed'}`);
process.exit(failures ? 1 : 0);
