// The studio page: the collect screen (keys 1 2 T B E S U), data (export, import, agreement),
// training on the server or in the tab (live charts from the server's events or the worker's messages) and the
// comparison.
// Everything shown from data is set as text (textContent / value), never parsed as markup.
const $ = (id) => document.getElementById(id);
const state = { pair: null, kind: 'collect', busy: false, charts: null, metrics: [] };

const labeler = () => $('labeler').value.trim();

async function api(path, opts = {}) {
  const r = await fetch(path, { ...opts, headers: { 'Content-Type': 'application/json', ...(opts.headers || {}) } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `${path}: HTTP ${r.status}`);
  return body;
}
const post = (path, body) =>
  api(path, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) });

function say(text) {
  $('status').textContent = text;
}

function row(table, cells, header = false) {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const td = document.createElement(header ? 'th' : 'td');
    td.textContent = String(c);
    tr.append(td);
  }
  table.append(tr);
}

// ---- tabs -------------------------------------------------------------------------------------
function showTab(name) {
  for (const b of document.querySelectorAll('nav .tab')) b.classList.toggle('active', b.dataset.tab === name);
  for (const s of document.querySelectorAll('.screen')) s.hidden = s.id !== name;
  if (name === 'data') refreshData();
  if (name === 'compare') refreshCompare();
  if (name === 'train') ensureCharts();
}
for (const b of document.querySelectorAll('nav .tab')) {
  b.addEventListener('click', () => {
    showTab(b.dataset.tab);
    if (b.dataset.tab === 'collect' && state.kind !== 'collect') {
      state.kind = 'collect';
      mode();
      next();
    }
  });
}

/** Collecting training pairs, or judging the trained policy against the reference (blind). */
function mode() {
  document.body.dataset.kind = state.kind;
  $('mode').textContent =
    state.kind === 'compare'
      ? 'Comparing the trained policy with the starting model on held-out ' +
        'prompts (blind). Collect (tab above) goes back to collecting.'
      : '';
}

// ---- collect ----------------------------------------------------------------------------------
function showPair(p) {
  state.pair = p;
  $('editor').hidden = true;
  $('prompt').textContent = p ? p.prompt : '';
  $('a').textContent = p ? p.a : '';
  $('b').textContent = p ? p.b : '';
  if (!p)
    say(state.kind === 'compare' ? 'No held-out prompts left to judge.' : 'No prompts left: add some on the right.');
  else say(state.kind === 'compare' ? 'Comparison: which completion is better? (blind)' : '');
  document.body.dataset.pair = p ? String(p.id) : 'none'; // what the page shows now (tests wait on it)
  document.body.dataset.pairKind = p ? p.kind : '';
  for (const id of ['a', 'b']) {
    $(id).classList.remove('flash');
    void $(id).offsetWidth;
    $(id).classList.add('flash');
  }
}

async function next() {
  if (!labeler()) {
    say('Type your name (Labeler, top right) to start.');
    $('labeler').focus();
    return;
  }
  state.busy = true;
  say('sampling...');
  try {
    showPair(await api(`/api/next?labeler=${encodeURIComponent(labeler())}&kind=${state.kind}`));
  } catch (e) {
    say(e.message);
  } finally {
    state.busy = false;
  }
  refreshProgress();
}

async function label(verdict, extra = {}) {
  if (state.busy || !state.pair) return;
  state.busy = true;
  try {
    await post('/api/label', { pairId: state.pair.id, labeler: labeler(), verdict, ...extra });
  } catch (e) {
    say(e.message);
    state.busy = false;
    return;
  }
  state.busy = false;
  await next();
}

async function undo() {
  if (state.busy || !labeler()) return;
  const r = await post('/api/undo', { labeler: labeler(), kind: state.kind }).catch((e) => ({ error: e.message }));
  if (r.error) return say(r.error);
  if (!r.pair) return say('Nothing to undo.');
  showPair(r.pair);
  say('Undone: label this pair again.');
  refreshProgress();
}

function openEditor() {
  if (!state.pair) return;
  $('editor').hidden = false;
  $('edit-text').value = state.pair[$('edit-side').value];
  $('edit-text').focus();
}
$('edit-side').addEventListener('change', () => {
  if (state.pair) $('edit-text').value = state.pair[$('edit-side').value];
});
function saveEdit() {
  const text = $('edit-text').value;
  if (!text.trim()) return say('The edited text is empty.');
  label('edit', { editedSide: $('edit-side').value, editedText: text });
}
$('edit-save').addEventListener('click', saveEdit);
$('edit-cancel').addEventListener('click', () => {
  $('editor').hidden = true;
});
$('edit').addEventListener('click', openEditor);
$('undo').addEventListener('click', undo);
for (const b of document.querySelectorAll('[data-verdict]'))
  b.addEventListener('click', () => label(b.dataset.verdict));

const KEYS = { 1: 'a', 2: 'b', t: 'tie', b: 'both_bad', s: 'skip' };
document.addEventListener('keydown', (ev) => {
  if ($('collect').hidden || (ev.ctrlKey && ev.key !== 'Enter') || ev.metaKey || ev.altKey) return;
  const typing = ['INPUT', 'TEXTAREA', 'SELECT'].includes(document.activeElement?.tagName);
  if (typing) {
    if (document.activeElement === $('edit-text') && ev.key === 'Enter' && ev.ctrlKey) {
      ev.preventDefault();
      saveEdit();
    }
    if (document.activeElement === $('edit-text') && ev.key === 'Escape') $('editor').hidden = true;
    return;
  }
  const k = ev.key.toLowerCase();
  if (k in KEYS) {
    ev.preventDefault();
    label(KEYS[k]);
  } else if (k === 'e') {
    ev.preventDefault();
    openEditor();
  } else if (k === 'u') {
    ev.preventDefault();
    undo();
  }
});

$('labeler').addEventListener('change', () => {
  localStorage.setItem('tsdpo-labeler', labeler());
  next();
});
$('add-prompts').addEventListener('click', async () => {
  const r = await post('/api/prompts', { text: $('new-prompts').value }).catch((e) => ({ error: e.message }));
  if (r.error) return say(r.error);
  $('new-prompts').value = '';
  say(`${r.added} prompt(s) added.`);
  if (!state.pair) next();
});

async function refreshProgress() {
  const s = await api(`/api/state?labeler=${encodeURIComponent(labeler())}`).catch(() => null);
  if (!s) return;
  const p = s.progress;
  $('progress').textContent =
    `${p.mine} labeled by you · ${p.total} labels in all · ${p.prompts} prompts ` +
    `(${s.heldOut} held out) · labelers: ${p.labelers.join(', ') || 'none yet'}`;
  return s;
}

// ---- data -------------------------------------------------------------------------------------
function exportLinks() {
  const q = `ties=${$('ex-ties').checked ? 1 : 0}&both_bad=${$('ex-bad').checked ? 1 : 0}`;
  $('ex-jsonl').href = `/api/export?format=jsonl&${q}`;
  $('ex-parquet').href = `/api/export?format=parquet&${q}`;
}
$('ex-ties').addEventListener('change', exportLinks);
$('ex-bad').addEventListener('change', exportLinks);
$('import-file').addEventListener('change', async () => {
  const f = $('import-file').files[0];
  if (!f) return;
  const r = await post(`/api/import?name=${encodeURIComponent(f.name)}`, await f.text()).catch((e) => ({
    error: e.message,
  }));
  $('import-status').textContent = r.error ?? `${r.imported} pairs imported from ${f.name}`;
  refreshData();
});

async function refreshData() {
  exportLinks();
  const s = await refreshProgress();
  if (!s) return;
  const t = $('counts');
  t.replaceChildren();
  row(t, ['A/B better', 'edited', 'tie', 'both bad', 'skipped'], true);
  const v = s.progress.verdicts;
  row(t, [v.a + v.b, v.edit, v.tie, v.both_bad, v.skip]);
  const a = s.agreement;
  $('agreement').textContent =
    a.rate === null
      ? 'No pair has been labeled by two labelers yet.'
      : `${a.pairs} pairs labeled by two or more labelers; they ` +
        `agree on ${(100 * a.rate).toFixed(1)}% of labeler pairs.`;
  const at = $('agreement-table');
  at.replaceChildren();
  if (a.byLabelers.length) row(at, ['labeler', 'labeler', 'pairs in common', 'same verdict'], true);
  for (const x of a.byLabelers) row(at, [x.a, x.b, x.overlap, x.agree]);
}

// ---- train ------------------------------------------------------------------------------------
const CHARTS = [
  ['chart-loss', 'loss', (m) => m.loss],
  ['chart-margins', 'rewards/margins', (m) => m['rewards/margins']],
  ['chart-acc', 'rewards/accuracies', (m) => m['rewards/accuracies']],
  // The mean log-ratio log pi/pi_ref over the pairs' completions: how far the policy moved (a KL proxy on the training
  // pairs).
  [
    'chart-kl',
    'log π/π_ref on the pairs',
    (m) => (m['rewards/chosen'] + m['rewards/rejected']) / (2 * (m.beta ?? Number($('beta').value))),
  ],
];

function ensureCharts() {
  if (state.charts || typeof uPlot === 'undefined') return;
  state.charts = CHARTS.map(
    ([id, title]) =>
      new uPlot(
        {
          title,
          width: 420,
          height: 200,
          scales: { x: { time: false } },
          series: [{ label: 'step' }, { label: title, stroke: '#36c', width: 2 }],
        },
        [[], []],
        $(id),
      ),
  );
  drawCharts();
}

function drawCharts() {
  if (!state.charts) return;
  const train = state.metrics.filter((m) => typeof m.loss === 'number');
  const steps = train.map((m) => m.step);
  CHARTS.forEach(([, , f], i) => state.charts[i].setData([steps, train.map(f)]));
}

function trainStatus(text) {
  $('train-status').textContent = text;
}
function trainLog(line) {
  const el = $('train-log');
  el.textContent = `${el.textContent}${line}\n`.split('\n').slice(-200).join('\n');
  el.scrollTop = el.scrollHeight;
}

function addMetrics(m) {
  state.metrics.push(m);
  window.studioMetrics = state.metrics; // what the charts show (tests read it)
  drawCharts();
  if (typeof m.loss === 'number') trainStatus(`${state.runName ?? 'run'}: step ${m.step}, loss ${m.loss.toFixed(4)}`);
}

async function startTrain(resume) {
  ensureCharts();
  if ($('where').value === 'tab') return startInTab(resume);
  const body = { max_steps: $('steps').value, beta: $('beta').value, learning_rate: $('lr').value, resume };
  const r = await post('/api/train', body).catch((e) => ({ error: e.message }));
  if (r.error) return trainStatus(r.error);
  if (!resume) {
    state.metrics = [];
    drawCharts();
    $('train-log').textContent = '';
  }
  state.runName = r.name;
  trainStatus(`${r.name}: ${r.status} (output ${r.output})`);
}
$('train-start').addEventListener('click', () => startTrain(false));
$('train-resume').addEventListener('click', () => startTrain(true));
$('train-stop').addEventListener('click', async () => {
  if (state.tabRun && document.body.dataset.run?.startsWith('running')) return state.tabRun.stop();
  const r = await post('/api/train/stop', {}).catch((e) => ({ error: e.message }));
  trainStatus(r.error ?? `${r.name}: stopping`);
});

function listen() {
  const es = new EventSource('/api/events');
  es.addEventListener('metrics', (e) => addMetrics(JSON.parse(e.data)));
  es.addEventListener('log', (e) => trainLog(JSON.parse(e.data).line));
  es.addEventListener('status', (e) => {
    const s = JSON.parse(e.data);
    state.runName = s.run;
    document.body.dataset.run = s.status;
    trainStatus(
      `${s.run}: ` +
        `${s.status}${s.code != null && s.status === 'failed' ? ` (exit code ${s.code}; see the log below)` : ''}`,
    );
  });
}

// Training in this tab: the engine in a Web Worker (tab-worker.js), which posts metrics as it goes.
async function startInTab(resume) {
  const { startTabTraining } = await import('/tab-train.js');
  if (!resume) {
    state.metrics = [];
    window.studioMetrics = state.metrics;
    drawCharts();
    $('train-log').textContent = '';
  }
  state.runName = 'this tab';
  state.tabRun = startTabTraining({
    steps: Number($('steps').value),
    beta: Number($('beta').value),
    lr: Number($('lr').value),
    resume,
    onMetrics: addMetrics,
    onLog: trainLog,
    onStatus: (s) => {
      trainStatus(`in this tab: ${s}`);
      document.body.dataset.run = s.split(' ')[0];
    },
  });
}

// ---- compare ----------------------------------------------------------------------------------
const pct = (x) => `${(100 * x).toFixed(1)}%`;
async function refreshCompare() {
  const r = await api('/api/compare').catch((e) => ({ error: e.message }));
  if (r.error) return ($('compare-run').textContent = r.error);
  $('compare-run').textContent = r.run
    ? `Trained policy: ${r.run}, against the starting model, on held-out prompts.`
    : 'No finished training run yet: train one first.';
  $('compare-human').textContent =
    r.run && r.n
      ? `Win rate of the policy: ${pct(r.winRate)} ± ${pct(r.stderr)} (${r.n} judgments; ties and both-bad count 1/2)`
      : '';
}
$('compare-start').addEventListener('click', () => {
  state.kind = 'compare';
  mode();
  showTab('collect');
  next();
});
$('compare-reward').addEventListener('click', async () => {
  $('compare-auto').textContent = 'sampling and judging...';
  const r = await post('/api/compare/reward', {
    reward: $('reward').value,
    prompts: Number($('reward-n').value),
  }).catch((e) => ({ error: e.message }));
  $('compare-auto').textContent =
    r.error ?? `Win rate of the policy by ${r.reward}: ${pct(r.winRate)} ± ${pct(r.stderr)} over ${r.n} prompts`;
});

// ---- start ------------------------------------------------------------------------------------
(async () => {
  // The token came in the URL; the server answered with a cookie, so drop it from the address bar.
  if (location.search.includes('token=')) history.replaceState(null, '', '/');
  $('labeler').value = localStorage.getItem('tsdpo-labeler') ?? '';
  const s = await refreshProgress();
  if (s) {
    $('guidelines').textContent = s.guidelines;
    const base = (p) =>
      p
        .replace(/[\\/]+$/, '')
        .split(/[\\/]/)
        .pop();
    $('model').textContent = `model ${base(s.model)}${s.reference ? ` · reference ${base(s.reference)}` : ''}`;
    $('model').title = `${s.model}${s.reference ? ` · ${s.reference}` : ''}`;
    if (s.run) {
      state.runName = s.run.name;
      for (const m of s.run.metrics) state.metrics.push(m);
      trainStatus(`${s.run.name}: ${s.run.status}`);
    }
  }
  listen();
  next();
})();
