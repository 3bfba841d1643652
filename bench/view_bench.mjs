// How fast `steper view`'s page opens and answers filters at scale, in
// Debian's headless Chromium. Writes Q questions (10 passages each of ~450
// characters) and M methods' traces (2-4 steps, 5 passages a step), makes
// the page, then opens it REPEATS times next to a baseline measured in the
// same run: the same file with the viewer's script swapped for one that
// does nothing, the floor any page of this size pays. Prints times, spread and the ratio.
//   node bench/view_bench.mjs build/steper [QUESTIONS=10000] [METHODS=6] [REPEATS=5]
// Needs puppeteer-core from tests/view (scripts/install.sh installs it).
import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import {createRequire} from 'node:module';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath, pathToFileURL} from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'tests/package.json'));
const {default: puppeteer} = await import(pathToFileURL(require.resolve('puppeteer-core')).href);

const [steper, qArg, mArg, rArg] = process.argv.slice(2);
if (!steper) throw new Error('usage: node bench/view_bench.mjs STEPER [QUESTIONS] [METHODS] [REPEATS]');
const Q = Number(qArg || 10000), NM = Number(mArg || 6), REPEATS = Number(rArg || 5);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'steper-view-bench-'));
if (!process.env.KEEP) process.on("exit", () => fs.rmSync(work, {recursive: true, force: true})); else console.log(work);

// A small deterministic generator, so every run measures the same page.
let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const pick = (a) => a[Math.floor(rand() * a.length)];
const words = 'the of and in a to was is for on by with as at from his her film born city river album team war first year which who'.split(' ')
  .concat(Array.from({length: 400}, (_, i) => 'word' + i));
const sentence = (n) => Array.from({length: n}, () => pick(words)).join(' ');

const questions = [], corpus = fs.openSync(path.join(work, 'corpus.jsonl'), 'w');
for (let i = 0; i < Q; ++i) {
  const hops = 2 + (i % 3 === 0 ? 1 : 0) + (i % 7 === 0 ? 1 : 0);
  const pool = Array.from({length: 10}, (_, k) => `p${i}_${k}`);
  let lines = '';
  for (const id of pool) lines += JSON.stringify({id, title: sentence(3), text: sentence(75)}) + '\n';
  fs.writeSync(corpus, lines);
  questions.push({id: `q${i}`, question: sentence(14) + '?', answers: [sentence(2)], type: pick(['bridge', 'comparison', 'compositional', 'inference']),
    supporting_ids: pool.slice(0, hops)});
}
fs.closeSync(corpus);
fs.writeFileSync(path.join(work, 'questions.jsonl'), questions.map((q) => JSON.stringify(q)).join('\n') + '\n');
const files = [];
for (let m = 0; m < NM; ++m) {
  const out = fs.openSync(path.join(work, `m${m}.jsonl`), 'w');
  for (let i = 0; i < Q; ++i) {
    const q = questions[i];
    const steps = Array.from({length: 2 + Math.floor(rand() * 3)}, () => ({query: sentence(10),
      retrieved: Array.from({length: 5}, () => `p${i}_${Math.floor(rand() * 10)}`), output: sentence(22)}));
    const right = rand() < 0.3 + 0.08 * m;
    fs.writeSync(out, JSON.stringify({id: q.id, question: q.question, answers: q.answers, strategy: 'ircot', steps,
      prediction: right ? q.answers[0] : sentence(2), stop: rand() < 0.3 ? 'max_steps' : 'answer'}) + '\n');
  }
  fs.closeSync(out);
  files.push(`method${m}=${path.join(work, `m${m}.jsonl`)}`);
}

const page = path.join(work, 'view.html');
let t = process.hrtime.bigint();
execFileSync(steper, ['-q', 'view', '--traces', ...files, '--questions', path.join(work, 'questions.jsonl'), '--corpus', path.join(work, 'corpus.jsonl'),
  '--out', page]);
const writeS = Number(process.hrtime.bigint() - t) / 1e9;
const html = fs.readFileSync(page, 'utf8');
// The baseline: the same file with the viewer's script swapped for one that
// only says it ran: what the browser spends reading a page of this size.
const baseline = path.join(work, 'baseline.html');
fs.writeFileSync(baseline, html.slice(0, html.lastIndexOf('<script>')) +
  '<script>document.documentElement.dataset.readyMs=performance.now().toFixed(1);</script></body></html>\n');

const browser = await puppeteer.launch({executablePath: process.env.STEPER_CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage']});
const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return {median: s[Math.floor(s.length / 2)], min: s[0], max: s[s.length - 1]};
};
const fmt = (s, unit = 'ms') => `${s.median.toFixed(0)} ${unit} (min ${s.min.toFixed(0)}, max ${s.max.toFixed(0)})`;
async function opened(file) {
  const p = await browser.newPage();
  await p.setViewport({width: 1280, height: 800});
  const errors = [];
  p.on('pageerror', (e) => errors.push(String(e)));
  await p.goto(pathToFileURL(file).href, {waitUntil: 'load', timeout: 120000});
  await p.waitForFunction(() => document.documentElement.dataset.readyMs, {timeout: 120000});
  // Ready, then the first frame painted after it.
  const ms = await p.evaluate(() => new Promise((res) => requestAnimationFrame(() => res(performance.now()))));
  if (errors.length) throw new Error(errors.join('; '));
  return {p, ms};
}
async function filterMs(p, id, value) {
  return p.evaluate((id, value) => new Promise((res) => {
    const t0 = performance.now();
    window.addEventListener('hashchange', () => requestAnimationFrame(() => res(performance.now() - t0)), {once: true});
    const s = document.getElementById(id);
    s.value = value;
    s.dispatchEvent(new Event('change', {bubbles: true}));
  }), id, value);
}
const viewer = [], base = [], filters = [], search = [];
try {
  for (let r = 0; r < REPEATS; ++r) {
    const b = await opened(baseline);
    base.push(b.ms);
    await b.p.close();
    const v = await opened(page);
    viewer.push(v.ms);
    filters.push(await filterMs(v.p, 'f-method', 'method3'));
    filters.push(await filterMs(v.p, 'f-outcome', 'wrong'));
    filters.push(await filterMs(v.p, 'f-right', 'method5'));
    filters.push(await filterMs(v.p, 'f-a', 'method5'));
    filters.push(await filterMs(v.p, 'f-b', 'method0'));
    search.push(await v.p.evaluate(() => new Promise((res) => {
      const t0 = performance.now();
      window.addEventListener('hashchange', () => requestAnimationFrame(() => res(performance.now() - t0)), {once: true});
      location.hash = 'q=word1';
    })));
    await v.p.close();
  }
} finally {
  await browser.close();
}
const v = stats(viewer), b = stats(base);
console.log(`machine: ${os.cpus().length} x ${os.cpus()[0].model}; ${REPEATS} repeats; Chromium ${execFileSync(process.env.STEPER_CHROMIUM || '/usr/bin/chromium', ['--version']).toString().trim()}`);
console.log(`page: ${Q} questions x ${NM} methods, ${(html.length / 1e6).toFixed(1)} MB, written by steper view in ${writeS.toFixed(1)} s`);
console.log(`baseline (the same file, no script): ${fmt(b)}`);
console.log(`viewer open to first frame:        ${fmt(v)}   ratio ${(v.median / b.median).toFixed(2)}x baseline; target < 3000 ms: ${v.max < 3000 ? 'met' : 'NOT met'}`);
console.log(`filter change to next frame:       ${fmt(stats(filters))} over ${filters.length} changes`);
console.log(`search "word1" to next frame:      ${fmt(stats(search))}`);
