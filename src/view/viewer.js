// steper's trace viewer. The data is in the blocks above (view_page.cc
// states their layout): the index, parsed on opening, and the bulk, steps
// and passages as JSON lines in blocks (gzip-compressed when large), each
// unpacked the first time a card on screen needs it. Plain DOM, no library,
// so the page works from disk. Cards are rendered PAGE at a time as they
// scroll into view, so 10,000 questions cost only what is on screen.
(function () {
  'use strict';
  const PAGE = 50;
  const $ = (id) => document.getElementById(id);
  const D = JSON.parse($('steper-index').textContent);
  const M = D.methods, Q = D.questions, R = D.runs;
  // Question fields, run summary fields (view_page.cc).
  const QID = 0, QTEXT = 1, QANS = 2, QTYPE = 3, QHOPS = 4, QTITLES = 5;
  const PRED = 0, STOP = 1, EM = 2, F1 = 3, ACC = 4, RECALL = 5, NSTEPS = 6, GOLD_FOUND = 7, ERROR = 8;

  // ------------------------------------------------------------ the bulk
  const QPB = D.bulk.questions_per_block, PPB = D.bulk.passages_per_block;
  const unpacking = new Map();  // block id -> Promise of its lines
  const blocks = new Map();     // block id -> its lines, once unpacked
  async function unpack(text) {
    if (D.bulk.encoding !== 'gzip+base64') return text;
    let bytes;
    if (Uint8Array.fromBase64) bytes = Uint8Array.fromBase64(text);
    else {
      const bin = atob(text);
      bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; ++i) bytes[i] = bin.charCodeAt(i);
    }
    return new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).text();
  }
  function load(id) {
    let p = unpacking.get(id);
    if (!p) {
      const el = $(id);
      p = unpack(el.textContent).then((text) => {
        blocks.set(id, text.split('\n'));
        el.textContent = '';  // the page need not keep both forms
      });
      unpacking.set(id, p);
    }
    return p;
  }
  // Unpacks what the cards of these questions show: their lines, then the
  // passages those name.
  async function need(qis) {
    await Promise.all([...new Set(qis.map((qi) => 'bq' + Math.floor(qi / QPB)))].map(load));
    const ids = new Set();
    for (const qi of qis) {
      const d = detail(qi);
      for (const p of d[0]) ids.add('bp' + Math.floor(p / PPB));
      for (let mi = 1; mi < d.length; ++mi) if (d[mi]) for (const step of d[mi]) for (const p of step[1]) ids.add('bp' + Math.floor(p / PPB));
    }
    await Promise.all([...ids].map(load));
  }
  const details = new Map(), passages = new Map();
  // [gold passage indices, steps of method 0 or null, ...]; once `need`ed.
  function detail(qi) {
    let d = details.get(qi);
    if (!d) details.set(qi, (d = JSON.parse(blocks.get('bq' + Math.floor(qi / QPB))[qi % QPB])));
    return d;
  }
  function passage(p) {
    let x = passages.get(p);
    if (!x) passages.set(p, (x = JSON.parse(blocks.get('bp' + Math.floor(p / PPB))[p % PPB])));
    return x;
  }
  const goldSet = (qi) => new Set(detail(qi)[0]);
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]));
  const pct = (x) => (100 * x).toFixed(1);
  const methodIndex = new Map(M.map((m, i) => [m.id, i]));
  let searchText = null;  // lower-cased "id question" per question, built on first search

  // ------------------------------------------------------------ state
  // Everything a view depends on lives in the URL's fragment, so a view can
  // be shared as a link.
  const KEYS = ['q', 'm', 'type', 'hops', 'outcome', 'right', 'wrong', 'a', 'b', 'id'];
  function readState() {
    const p = new URLSearchParams(location.hash.slice(1));
    const s = {};
    for (const k of KEYS) s[k] = p.get(k) || '';
    for (const k of ['m', 'right', 'wrong', 'a', 'b']) if (s[k] && !methodIndex.has(s[k])) s[k] = '';
    return s;
  }
  function link(s) {
    const p = new URLSearchParams();
    for (const k of KEYS) if (s[k]) p.set(k, s[k]);
    return '#' + p.toString();
  }

  // ------------------------------------------------------------ filters
  const isRight = (r) => r !== null && r[ACC] > 0;
  function outcomeHolds(outcome, qi, r) {
    switch (outcome) {
      case 'right': return isRight(r);
      case 'wrong': return r !== null && !isRight(r);
      case 'gold_ignored': return r !== null && !isRight(r) && r[GOLD_FOUND] === 1;
      case 'gold_missed': return r !== null && r[GOLD_FOUND] === 0;
      case 'max_steps': return r !== null && r[STOP] === 'max_steps';
      case 'error': return r !== null && r[STOP] === 'error';
      case 'missing': return r === null;
      default: return true;
    }
  }
  function matches(s) {
    const out = [];
    const needle = s.q.trim().toLowerCase();
    if (needle && !searchText) searchText = Q.map((q) => (q[QID] + ' ' + q[QTEXT]).toLowerCase());
    const focus = s.m ? [methodIndex.get(s.m)] : M.map((_, i) => i);
    const right = s.right ? methodIndex.get(s.right) : -1, wrong = s.wrong ? methodIndex.get(s.wrong) : -1;
    const hops = s.hops ? Number(s.hops) : -1;
    for (let qi = 0; qi < Q.length; ++qi) {
      const q = Q[qi];
      if (s.id && q[QID] !== s.id) continue;
      if (s.type && q[QTYPE] !== s.type) continue;
      if (hops >= 0 && q[QHOPS] !== hops) continue;
      if (needle && searchText[qi].indexOf(needle) < 0) continue;
      if (right >= 0 && !isRight(R[right][qi])) continue;
      if (wrong >= 0 && (R[wrong][qi] === null || isRight(R[wrong][qi]))) continue;
      if (s.outcome && !focus.some((mi) => outcomeHolds(s.outcome, qi, R[mi][qi]))) continue;
      out.push(qi);
    }
    return out;
  }

  // ------------------------------------------------------------ metrics
  function totals(mi, keep) {
    const t = {n: 0, em: 0, f1: 0, acc: 0, recall: 0, recallN: 0, steps: 0, maxSteps: 0, errors: 0, missing: 0};
    const col = R[mi];
    for (let qi = 0; qi < Q.length; ++qi) {
      if (keep && !keep(Q[qi])) continue;
      const r = col[qi];
      if (r === null) { ++t.missing; continue; }
      ++t.n;
      t.em += r[EM]; t.f1 += r[F1]; t.acc += r[ACC]; t.steps += r[NSTEPS];
      if (r[RECALL] >= 0) { t.recall += r[RECALL]; ++t.recallN; }
      if (r[STOP] === 'max_steps') ++t.maxSteps;
      if (r[STOP] === 'error') ++t.errors;
    }
    return t;
  }
  const mean = (sum, n) => (n ? pct(sum / n) : '–');
  function cell(text, state, title) {
    return '<td><a href="' + esc(link(state)) + '" data-jump="browser"' + (title ? ' title="' + esc(title) + '"' : '') + '>' + text + '</a></td>';
  }
  function renderMetrics() {
    const types = [...new Set(Q.map((q) => q[QTYPE]).filter((t) => t))].sort();
    const hops = [...new Set(Q.map((q) => q[QHOPS]).filter((h) => h > 0))].sort((x, y) => x - y);
    let h = '<table class="metrics"><thead><tr><th>Method</th><th>Traces</th><th>EM</th><th>F1</th><th>Acc</th>' +
      '<th title="share of supporting passages retrieved">Recall</th><th>Steps</th><th>Step limit</th><th>Errors</th>';
    for (const t of types) h += '<th class="break">' + esc(t) + '</th>';
    for (const k of hops) h += '<th class="break">' + k + ' hops</th>';
    h += '</tr></thead><tbody>';
    M.forEach((m, mi) => {
      const t = totals(mi), all = {m: m.id};
      h += '<tr><th><a href="' + esc(link(all)) + '" data-jump="browser">' + esc(m.label) + '</a></th>';
      h += cell(t.n + (t.missing ? ' <small>(' + t.missing + ' missing)</small>' : ''), t.missing ? {m: m.id, outcome: 'missing'} : all);
      h += cell(mean(t.em, t.n), {m: m.id, outcome: 'wrong'}, 'open the runs it got wrong');
      h += cell(mean(t.f1, t.n), all);
      h += cell(mean(t.acc, t.n), {m: m.id, outcome: 'right'}, 'open the runs it got right');
      h += cell(mean(t.recall, t.recallN), {m: m.id, outcome: 'gold_missed'}, 'open the runs that missed a gold passage');
      h += cell(t.n ? (t.steps / t.n).toFixed(2) : '–', all);
      h += cell(mean(t.maxSteps, t.n), {m: m.id, outcome: 'max_steps'}, 'open the runs stopped at the step limit');
      h += cell(String(t.errors), {m: m.id, outcome: 'error'}, 'open the runs stopped by an error');
      for (const ty of types) {
        const s = totals(mi, (q) => q[QTYPE] === ty);
        h += cell(mean(s.acc, s.n), {m: m.id, type: ty}, s.n + ' questions');
      }
      for (const k of hops) {
        const s = totals(mi, (q) => q[QHOPS] === k);
        h += cell(mean(s.acc, s.n), {m: m.id, hops: String(k)}, s.n + ' questions');
      }
      h += '</tr>';
    });
    h += '</tbody></table>';
    if (types.length || hops.length) h += '<p class="hint">Columns after Errors: Acc by question type, then by hops.</p>';
    $('metrics').innerHTML = h;
    let t = '';
    for (const tb of D.tables) {
      t += '<h3>' + esc(tb.title) + '</h3><table class="metrics"><thead><tr>' + tb.header.map((x) => '<th>' + esc(x) + '</th>').join('') +
        '</tr></thead><tbody>' + tb.rows.map((r) => '<tr>' + r.map((x) => '<td>' + esc(x) + '</td>').join('') + '</tr>').join('') + '</tbody></table>';
    }
    $('tables').innerHTML = t;
    $('sources').textContent = Q.length + ' questions; traces from ' + M.map((m) => m.label + ': ' + m.file).join(', ') + '.';
  }
  function renderFigures() {
    if (!D.figures.length) return;
    $('plots').hidden = false;
    $('plots-link').hidden = false;
    $('figures').innerHTML = D.figures.map((f) => '<figure>' + f.svg + '<figcaption>' + esc(f.title) + '</figcaption></figure>').join('');
  }

  // ------------------------------------------------------------ cards
  const STOPS = {answer: 'answered', max_steps: 'stopped at the step limit', error: 'stopped by an error'};
  function passageItem(gold, p) {
    const [id, title, text] = passage(p);
    return '<li' + (gold ? ' class="gold" title="a supporting passage"' : '') + '><details><summary>' + (gold ? '★ ' : '') +
      esc(title || id) + ' <small>' + esc(id) + '</small></summary>' + (text ? '<p>' + esc(text) + '</p>' : '<p class="hint">no text (give --corpus or --index)</p>') +
      '</details></li>';
  }
  const orEmpty = (s) => (s ? esc(s) : '<i class="hint">(empty)</i>');
  function stepHtml(gold, step, k) {
    return '<div class="step"><div class="n">' + (k + 1) + '</div><div class="query"><b>Query</b> ' + orEmpty(step[0]) + '</div>' +
      '<ol class="passages">' + step[1].map((p) => passageItem(gold.has(p), p)).join('') + '</ol>' +
      '<div class="sentence"><b>Wrote</b> ' + orEmpty(step[2]) + '</div></div>';
  }
  function verdict(r) {
    if (r === null) return '<span class="missing">no trace</span>';
    return '<span class="pred ' + (isRight(r) ? 'right">✓ ' : 'wrong">✗ ') + esc(r[PRED] || '(empty)') + '</span>';
  }
  function stopHtml(r) {
    if (r === null) return '';
    return '<span class="stop stop-' + esc(r[STOP]) + '">' + esc(STOPS[r[STOP]] || r[STOP]) + (r[ERROR] ? ': ' + esc(r[ERROR]) : '') + '</span>';
  }
  function stepsOf(qi, mi) {
    const r = R[mi][qi];
    if (r === null) return '<p class="hint">' + esc(M[mi].label) + ' has no trace of this question.</p>';
    const gold = goldSet(qi);
    return detail(qi)[1 + mi].map((s, k) => stepHtml(gold, s, k)).join('') + '<div class="final">' + verdict(r) + ' ' + stopHtml(r) + '</div>';
  }
  // Two methods' steps in one grid: row k holds step k of both.
  function sideBySide(qi, a, b) {
    const ra = R[a][qi], rb = R[b][qi], sa = detail(qi)[1 + a] || [], sb = detail(qi)[1 + b] || [];
    const gold = goldSet(qi), n = Math.max(sa.length, sb.length);
    let h = '<div class="sbs"><div class="head">' + esc(M[a].label) + '</div><div class="head">' + esc(M[b].label) + '</div>';
    for (let k = 0; k < n; ++k) {
      for (const s of [sa, sb]) h += '<div class="cell">' + (k < s.length ? stepHtml(gold, s[k], k) : '') + '</div>';
    }
    for (const r of [ra, rb]) h += '<div class="cell final">' + verdict(r) + ' ' + stopHtml(r) + '</div>';
    return h + '</div>';
  }
  function card(qi, s) {
    const q = Q[qi];
    const shown = s.m ? [methodIndex.get(s.m)] : M.map((_, i) => i);
    let h = '<article class="card" data-q="' + qi + '"><header><a class="qid" href="' + esc(link({id: q[QID], a: s.a, b: s.b})) + '">' + esc(q[QID]) + '</a>';
    if (q[QTYPE]) h += ' <span class="tag">' + esc(q[QTYPE]) + '</span>';
    if (q[QHOPS]) h += ' <span class="tag">' + q[QHOPS] + ' hops</span>';
    h += '</header><p class="question">' + esc(q[QTEXT]) + '</p><p class="gold-answer">Gold: <b>' + esc(q[QANS][0] || '') + '</b>';
    if (q[QANS].length > 1) h += ' <span class="hint">also ' + q[QANS].slice(1).map(esc).join(', ') + '</span>';
    h += '</p>';
    const gold = detail(qi)[0];
    if (gold.length || q[QTITLES].length) {
      h += '<details class="support"><summary>Supporting passages (' + Math.max(gold.length, q[QTITLES].length) + ')</summary><ol class="passages">' +
        (gold.length ? gold.map((p) => passageItem(true, p)).join('') : q[QTITLES].map((t) => '<li class="gold">★ ' + esc(t) + '</li>').join('')) + '</ol></details>';
    }
    if (s.a && s.b) return h + sideBySide(qi, methodIndex.get(s.a), methodIndex.get(s.b)) + '</article>';
    h += '<table class="runs"><tbody>';
    for (const mi of shown) {
      const r = R[mi][qi];
      h += '<tr class="run" data-m="' + mi + '" tabindex="0" title="show the steps"><th>' + esc(M[mi].label) + '</th><td>' + verdict(r) + '</td><td>' +
        stopHtml(r) + '</td><td>' + (r ? r[NSTEPS] + (r[NSTEPS] === 1 ? ' step' : ' steps') : '') + '</td><td>' + (r && r[RECALL] >= 0 ? 'recall ' + pct(r[RECALL]) : '') + '</td></tr>' +
        '<tr class="steps" data-m="' + mi + '"' + (s.id || shown.length === 1 ? '' : ' hidden') + '><td colspan="5">' +
        (s.id || shown.length === 1 ? stepsOf(qi, mi) : '') + '</td></tr>';
    }
    return h + '</tbody></table></article>';
  }

  // ------------------------------------------------------------ rendering
  let state = readState(), list = [], rendered = 0, generation = 0, pending = null;
  // Renders the next PAGE cards once their bulk is unpacked; a render for
  // an older filter that finishes late is dropped.
  function renderMore() {
    if (pending) return pending;
    const gen = generation, from = rendered, end = Math.min(list.length, rendered + PAGE);
    pending = need(list.slice(from, end)).then(() => {
      if (gen !== generation) return;
      let h = '';
      for (let i = from; i < end; ++i) h += card(list[i], state);
      if (from === 0) $('cards').innerHTML = h || (state.id ? '<p class="hint">No question has the id ' + esc(state.id) + '.</p>' : '');
      else $('cards').insertAdjacentHTML('beforeend', h);
      rendered = end;
      const more = $('more');
      more.hidden = rendered >= list.length;
      more.textContent = 'Show ' + Math.min(PAGE, list.length - rendered) + ' more (' + (list.length - rendered) + ' left)';
    }).finally(() => { if (gen === generation) pending = null; });
    return pending;
  }
  function countLine() {
    const shown = state.m ? [methodIndex.get(state.m)] : M.map((_, i) => i);
    const parts = shown.map((mi) => {
      let n = 0, acc = 0;
      for (const qi of list) { const r = R[mi][qi]; if (r !== null) { ++n; acc += r[ACC]; } }
      return esc(M[mi].label) + ' ' + mean(acc, n);
    });
    return '<b>' + list.length + '</b> of ' + Q.length + ' questions' + (list.length ? ' · Acc here: ' + parts.join(', ') : '');
  }
  function options(select, values, labels, none) {
    select.innerHTML = '<option value="">' + esc(none) + '</option>' + values.map((v, i) => '<option value="' + esc(v) + '">' + esc(labels[i]) + '</option>').join('');
  }
  function syncControls() {
    $('f-search').value = state.q;
    for (const [id, k] of [['f-method', 'm'], ['f-type', 'type'], ['f-hops', 'hops'], ['f-outcome', 'outcome'], ['f-right', 'right'],
      ['f-wrong', 'wrong'], ['f-a', 'a'], ['f-b', 'b']]) $(id).value = state[k];
  }
  // Filters, then shows the count with the first cards.
  function render() {
    ++generation;
    pending = null;
    list = matches(state);
    rendered = 0;
    const gen = generation;
    return renderMore().then(() => {
      if (gen !== generation) return;
      $('count').innerHTML = countLine() + (state.id ? ' · <a href="' + esc(link({...state, id: ''})) + '">all questions</a>' : '');
    });
  }
  function go(s) {
    const target = link(s);
    if (target === location.hash || (target === '#' && !location.hash)) { state = readState(); syncControls(); render(); }
    else location.hash = target;
  }

  function setUp() {
    document.title = D.title;
    $('title').textContent = D.title;
    const ids = M.map((m) => m.id), labels = M.map((m) => m.label);
    options($('f-method'), ids, labels, 'all');
    const types = [...new Set(Q.map((q) => q[QTYPE]).filter((t) => t))].sort();
    options($('f-type'), types, types, 'all');
    const hops = [...new Set(Q.map((q) => q[QHOPS]).filter((h) => h > 0))].sort((x, y) => x - y).map(String);
    options($('f-hops'), hops, hops, 'all');
    options($('f-right'), ids, labels, '–');
    options($('f-wrong'), ids, labels, '–');
    options($('f-a'), ids, labels, '–');
    options($('f-b'), ids, labels, '–');
    // The disagreement sets of the page's pairs, both ways, each opening
    // the two methods side by side.
    let pre = '';
    for (const [a, b] of D.pairs) {
      for (const [r, w] of [[methodIndex.get(a), methodIndex.get(b)], [methodIndex.get(b), methodIndex.get(a)]]) {
        pre += '<a class="chip" href="' + esc(link({right: M[r].id, wrong: M[w].id, a: M[r].id, b: M[w].id})) + '">' + esc(M[r].label) + ' ✓ ' + esc(M[w].label) + ' ✗</a> ';
      }
    }
    $('presets').innerHTML = pre ? 'Disagreements: ' + pre : '';
    renderMetrics();
    renderFigures();

    const form = $('filters');
    form.addEventListener('change', (e) => {
      if (e.target.id === 'f-search') return;
      go({...readForm(), id: ''});
    });
    let typing = null;
    $('f-search').addEventListener('input', () => {
      clearTimeout(typing);
      typing = setTimeout(() => go({...readForm(), id: ''}), 200);
    });
    form.addEventListener('submit', (e) => e.preventDefault());
    $('f-reset').addEventListener('click', () => go({}));
    $('more').addEventListener('click', () => renderMore());
    if ('IntersectionObserver' in window) {
      new IntersectionObserver((entries) => { if (entries.some((e) => e.isIntersecting) && rendered < list.length) renderMore(); }, {rootMargin: '800px'}).observe($('more'));
    }
    $('cards').addEventListener('click', toggleSteps);
    $('cards').addEventListener('keydown', (e) => { if (e.key === 'Enter') toggleSteps(e); });
    document.addEventListener('click', (e) => {
      const a = e.target.closest('a[data-jump]');
      if (!a) return;
      const target = $(a.dataset.jump);
      if (a.getAttribute('href') === '#') e.preventDefault();
      setTimeout(() => target.scrollIntoView(), 0);
    });
    window.addEventListener('hashchange', () => { state = readState(); syncControls(); render(); });
    syncControls();
    render().then(() => {
      // When the page became usable, for bench/view_bench.mjs.
      document.documentElement.dataset.readyMs = performance.now().toFixed(1);
    }, (e) => {
      $('count').textContent = 'The traces cannot be unpacked in this browser (' + e + '); open the page in a current Chromium, Firefox or Safari.';
      throw e;
    });
  }
  function readForm() {
    return {q: $('f-search').value, m: $('f-method').value, type: $('f-type').value, hops: $('f-hops').value, outcome: $('f-outcome').value,
      right: $('f-right').value, wrong: $('f-wrong').value, a: $('f-a').value, b: $('f-b').value};
  }
  function toggleSteps(e) {
    const row = e.target.closest('tr.run');
    if (!row || e.target.closest('a')) return;
    const qi = Number(row.closest('.card').dataset.q), mi = Number(row.dataset.m);
    const steps = row.nextElementSibling;
    if (steps.hidden && !steps.firstElementChild.innerHTML) steps.firstElementChild.innerHTML = stepsOf(qi, mi);
    steps.hidden = !steps.hidden;
  }
  setUp();
})();
