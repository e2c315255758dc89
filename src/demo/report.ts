// The demo's outputs: the terminal table, frontier.svg, and report.html, one self-contained file
// (inline CSS and SVG, no script, nothing loaded from the network).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderSvg, type ChartSeries } from './charts.js';
import type { DemoResult } from './demo.js';
import { pickBest } from '../eval/best-of-n.js';

const f = (x: number, d: number) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const pm = (x: number, se: number, d: number) => (Number.isFinite(se) && se > 0 ? `${f(x, d)} ± ${f(se, d)}` : f(x, d));

/** The results as a plain-text table (one row per policy). */
export function formatTable(r: DemoResult): string {
  const head = ['run', 'beta', 'reward', 'KL', 'win rate', 'note'];
  const body = r.rows.map((x) => [
    x.name, x.beta === null ? '-' : String(x.beta), pm(x.reward, x.rewardSe, 3), pm(x.kl, x.klSe, 2), pm(x.winRate, x.winRateSe, 3),
    x.kind === 'best-of-n' ? `KL bound log N-(N-1)/N = ${f(x.klBound!, 2)}` : x.kind === 'start' ? 'reference; KL 0 by definition'
      : `after ${r.config.steps} steps`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/** What the terminal shows at the end: the table, the frontier check and where the report is. */
export function resultText(r: DemoResult): string {
  return ['Results on held-out review prefixes (reward = sigmoid(AFINN score / 2) of the completion; KL(policy || starting model) in nats;',
    'win rate: how often a sample beats one of the starting model\'s on the same prompt by reward, ties 1/2):', '',
    formatTable(r), '', ...frontierLines(r),
    `report: ${join(r.output, 'report.html')}  chart: ${join(r.output, 'frontier.svg')}`].join('\n');
}

/** The two frontier checks in words (terminal and report). */
export function frontierLines(r: DemoResult): string[] {
  const { trained: t, bestOfN: b } = r.frontier;
  const bon = r.rows.filter((x) => x.kind === 'best-of-n');
  const top = bon.length ? bon[bon.length - 1] : null;
  const dpoBest = Math.max(...r.runs.filter((x) => x.kind === 'dpo').flatMap((x) => x.points.map((p) => p.reward)));
  return [
    `DPO checkpoints on or above the frontier of the starting model and Preferred-FT (the paper's comparison): ${t.onOrAbove} of ${t.points} (final points ${t.finalsOnOrAbove} of ${t.finals})`,
    `DPO checkpoints on or above the best-of-N frontier: ${b.onOrAbove} of ${b.points} (final points ${b.finalsOnOrAbove} of ${b.finals})` +
      (top ? `; best DPO reward ${f(dpoBest, 3)} vs ${top.name} ${f(top.reward, 3)}` : ''),
  ];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** An SVG document made inline-able: no XML prolog, no namespace declarations (HTML5 needs none). */
export function inlineSvg(svg: string): string {
  return svg.replace(/<\?xml[^>]*>\s*/, '').replace(/\s+xmlns(:\w+)?="[^"]*"/g, '');
}

const maxKl = (r: DemoResult) => Math.max(0, ...r.rows.map((x) => x.kl), ...r.runs.flatMap((x) => x.points.map((p) => p.kl)));

/** A hull drawn on to `kl` (flat after its last point, as frontierReward reads it). */
function extendFlat(hull: readonly { kl: number; reward: number }[], kl: number): { kl: number; reward: number }[] {
  const last = hull[hull.length - 1];
  return last && kl > last.kl ? [...hull, { kl, reward: last.reward }] : [...hull];
}

function frontierSeries(r: DemoResult): ChartSeries[] {
  const start = { x: 0, y: r.start.reward, hidden: true };
  const bon = r.rows.filter((x) => x.kind === 'best-of-n');
  const series: ChartSeries[] = [
    { name: 'frontier of start + Preferred-FT', points: extendFlat(r.frontier.trained.hull, maxKl(r)).map((p) => ({ x: p.kl, y: p.reward })), line: true, dashed: true, symbols: false, color: '#bbbbbb' },
    { name: 'starting model', points: [{ ...start, hidden: false, label: 'start' }], color: '#000000' },
    { name: 'best-of-N', points: [start, ...bon.map((x) => ({ x: x.kl, y: x.reward, label: `N=${x.n}` }))], line: true, color: '#7f7f7f' },
  ];
  for (const run of r.runs) {
    series.push({
      name: run.kind === 'dpo' ? `DPO \u03b2=${run.beta}` : 'Preferred-FT',
      points: [start, ...run.points.map((p) => ({ x: p.kl, y: p.reward }))], line: true,
      color: run.kind === 'preferred-ft' ? '#ff7f0e' : undefined,
    });
  }
  return series;
}

function curveSeries(r: DemoResult, key: string): ChartSeries[] {
  return r.runs.filter((run) => run.kind === 'dpo').map((run) => ({
    name: `DPO \u03b2=${run.beta}`, points: run.history.filter((h) => key in h).map((h) => ({ x: h.step, y: h[key] })), line: true, symbols: false,
  }));
}

function samplesTable(r: DemoResult, shown = 8): string {
  const cols = [{ name: 'starting model', samples: r.start.samples }];
  const maxN = Math.max(0, ...r.rows.filter((x) => x.kind === 'best-of-n').map((x) => x.n!));
  const heads = ['held-out prompt', 'starting model', ...(maxN ? [`best-of-${maxN}`] : []), ...r.runs.map((run) => (run.kind === 'dpo' ? `DPO \u03b2=${run.beta}` : 'Preferred-FT'))];
  const rows: string[] = [];
  for (let i = 0; i < Math.min(shown, r.evalPrompts.length); i++) {
    const cell = (s: { text: string; reward: number } | undefined) => (s ? `${esc(s.text)} <span class="r">${f(s.reward, 2)}</span>` : '');
    const start = cols[0].samples[i]?.[0];
    const group = cols[0].samples[i]?.slice(0, maxN) ?? [];
    const best = group.length ? group[pickBest(group.map((s) => s.reward))] : undefined;
    rows.push(`<tr><td class="p">${esc(r.evalPrompts[i])}</td><td>${cell(start)}</td>${maxN ? `<td>${cell(best)}</td>` : ''}` +
      r.runs.map((run) => `<td>${cell(run.finalSamples[i]?.[0])}</td>`).join('') + '</tr>');
  }
  return `<table class="samples"><tr>${heads.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${rows.join('\n')}</table>`;
}

function resultsTable(r: DemoResult): string {
  const rows = r.rows.map((x) => `<tr><td>${esc(x.name)}</td><td>${x.beta ?? '-'}</td><td>${pm(x.reward, x.rewardSe, 3)}</td><td>${pm(x.kl, x.klSe, 2)}</td>` +
    `<td>${pm(x.winRate, x.winRateSe, 3)}</td><td>${x.kind === 'best-of-n' ? `bound ${f(x.klBound!, 2)}` : ''}</td></tr>`);
  return `<table><tr><th>run</th><th>beta</th><th>reward</th><th>KL(&pi; || &pi;<sub>ref</sub>)</th><th>win rate vs start</th><th></th></tr>${rows.join('\n')}</table>`;
}

const CSS = `body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}table{border-collapse:collapse;margin:.6em 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f4f4f4}
table.samples td{font-size:12px;max-width:220px}td.p{font-weight:600}.r{color:#888;font-size:11px}
.charts{display:flex;flex-wrap:wrap;gap:12px}code{background:#f4f4f4;padding:0 3px}.note{color:#555}`;

/** Writes frontier.svg, loss.svg, accuracy.svg and report.html into r.output. */
export async function writeReport(r: DemoResult): Promise<void> {
  const frontier = await renderSvg({
    title: 'Expected reward vs KL to the starting model (held-out review prefixes)', xTitle: 'KL(\u03c0 || \u03c0_ref), nats',
    yTitle: 'mean reward', series: frontierSeries(r), xZero: true, width: 620, height: 400,
  });
  const loss = await renderSvg({ title: 'DPO training loss', xTitle: 'step', yTitle: 'loss', series: curveSeries(r, 'loss'), width: 420, height: 260 });
  const acc = await renderSvg({ title: 'DPO reward accuracy (training batches)', xTitle: 'step', yTitle: 'chosen reward > rejected', series: curveSeries(r, 'rewards/accuracies'), width: 420, height: 260 });
  writeFileSync(join(r.output, 'frontier.svg'), frontier);
  writeFileSync(join(r.output, 'loss.svg'), loss);
  writeFileSync(join(r.output, 'accuracy.svg'), acc);
  const c = r.config;
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tsdpo demo: DPO on review sentiment, in miniature</title><style>${CSS}</style></head><body>
<h1>DPO on review sentiment, in miniature</h1>
<p>A reproduction in miniature of the controlled-sentiment experiment of Rafailov et al., <i>Direct Preference Optimization</i>
(arXiv:2305.18290, Sec. 6.1 and Fig. 2 left), run offline by <code>tsdpo demo</code> on CPU in ${f(r.seconds.total ?? 0, 0)} s.
The starting (reference) model is a small GPT-2 pre-trained by <code>tsdpo pretrain</code> on review sentences and public-domain prose.
Prompts are the first words of review sentences (training: ${esc(c.train_sets.join(', '))}; evaluation: held-out IMDb sentences); the reward of a completion is sigmoid(AFINN score / 2) of the completion's text
(0.5 = no sentiment word). ${r.pairs.count} preference pairs were built from ${c.samples_per_prompt} samples per training prompt
(best vs worst by reward; ${r.pairs.skippedTies} of ${r.pairs.prompts} prompts skipped because all their samples tied;
mean reward of chosen ${f(r.pairs.meanChosen, 3)}, rejected ${f(r.pairs.meanRejected, 3)}).</p>
<h2>Reward vs KL frontier</h2>
<p class="note">Every point is evaluated on ${r.evalPrompts.length} held-out prompts: the mean reward of sampled completions, and
KL(&pi; || &pi;<sub>ref</sub>) = E<sub>y~&pi;</sub>[log &pi;(y|x) &minus; log &pi;<sub>ref</sub>(y|x)] estimated on the same
samples (${c.eval_samples} per prompt, plain sampling at temperature 1, at most ${c.max_new_tokens} tokens). Each DPO and Preferred-FT run is a line through its
checkpoints (every ${Math.max(1, Math.round(c.steps / c.checkpoints))} steps), starting at the starting model. Best-of-N keeps the highest-reward completion of N samples of the starting
model; its reward and KL are computed exactly from the starting model's reward distribution on each prompt (${c.ref_samples} samples per prompt):
KL = &Sigma;<sub>j</sub> q<sub>j</sub> log(q<sub>j</sub>/p<sub>j</sub>) with q<sub>j</sub> = F<sub>j</sub><sup>N</sup> &minus; F<sub>j&minus;1</sub><sup>N</sup>,
at most log N &minus; (N&minus;1)/N (less when completions tie). The dashed line is the upper concave hull of the starting model and the
Preferred-FT checkpoints, the trained baselines of the paper's figure (a point counts as on it when within one standard error).</p>
<ul>${frontierLines(r).map((l) => `<li>${esc(l)}</li>`).join('')}</ul>
<p class="note">Best-of-N is an inference-time method: it draws N completions from the starting model for every prompt, and needs the
reward model when generating. At the same KL it is hard to beat: Gao et al. (2022, arXiv:2210.10760) found it more KL-efficient than RL with PPO, and Yang et al.
(2024, <i>Asymptotics of Language Model Alignment</i>) show it approaches the KL-optimal policy. But its KL grows like log N, so high
rewards need many samples per prompt; DPO trains one policy, sampled once per prompt, that goes further.</p>
${inlineSvg(frontier)}
${resultsTable(r)}
<p class="note">&plusmn; one standard error over samples (win rates: over prompts). Every policy is sampled with the same random numbers (seed ${c.seed + 3}).
The win rate is the paper's other measure (Sec. 6.2, there judged by GPT-4): how often a policy's completion beats one of the starting model's
completions for the same prompt, judged by the reward (a tie counts 1/2); every sample meets each of the starting model's ${c.ref_samples} per prompt.
For best-of-N it is exact over the starting model's reward distribution, &Sigma;<sub>j</sub> q<sub>j</sub> (F<sub>j&minus;1</sub> + p<sub>j</sub>/2) (N/(N+1) without ties).</p>
<h2>DPO training curves</h2>
<div class="charts">${inlineSvg(loss)}${inlineSvg(acc)}</div>
<p class="note">${c.steps} steps of ${c.batch_size} pairs, AdamW, learning rate ${c.learning_rate}; the loss starts at ln 2 = 0.693 and the accuracy at 0 (policy = reference: every margin is 0).</p>
<h2>Sample completions, before and after</h2>
<p class="note">The first sample of each policy on the first held-out prompts (the same random numbers for every policy); the grey number is the reward.</p>
${samplesTable(r)}
<h2>Settings</h2>
<pre>${esc(JSON.stringify({ ...c, model: r.model }, null, 2))}</pre>
</body></html>
`;
  writeFileSync(join(r.output, 'report.html'), html);
}
