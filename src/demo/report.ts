// The demo's outputs: the terminal table, frontier.svg, and report.html, one self-contained file
// (inline CSS and SVG, no script, nothing loaded from the network).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderSvg, type ChartSeries } from './charts.js';
import { rowName, type DemoResult } from './demo.js';
import { frontierReward, type FrontierCheck } from './frontier.js';
import { pickBest } from '../eval/best-of-n.js';

const f = (x: number, d: number) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const pm = (x: number, se: number, d: number) => (Number.isFinite(se) && se > 0 ? `${f(x, d)} ± ${f(se, d)}` : f(x, d));

/** The results as a plain-text table (one row per policy). */
export function formatTable(r: DemoResult): string {
  const head = ['run', 'beta', 'reward', 'KL', 'win rate', 'note'];
  const body = r.rows.map((x) => [
    x.name,
    x.beta === null ? '-' : String(x.beta),
    pm(x.reward, x.rewardSe, 3),
    pm(x.kl, x.klSe, 2),
    pm(x.winRate, x.winRateSe, 3),
    noteOf(r, x),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

function noteOf(r: DemoResult, x: DemoResult['rows'][number]): string {
  switch (x.kind) {
    case 'best-of-n':
      return `KL bound log N-(N-1)/N = ${f(x.klBound!, 2)}`;
    case 'start':
      return 'reference; KL 0 by definition';
    case 'ppo':
      return `after ${r.config.ppo_updates} updates; reward model score ${f(x.rmScore ?? NaN, 3)}`;
    case 'ppo-gt':
      return `after ${r.config.ppo_updates} updates`;
    default:
      return `after ${r.config.steps} steps`;
  }
}

/** What the terminal shows at the end: the table, the frontier check and where the report is. */
export function resultText(r: DemoResult): string {
  return [
    'Results on held-out review prefixes (reward = sigmoid(AFINN score ' +
      '/ 2) of the completion; KL(policy || starting model) in nats;',
    "win rate: how often a sample beats one of the starting model's on the same prompt by reward, ties 1/2):",
    '',
    formatTable(r),
    '',
    ...rewardModelLines(r),
    ...frontierLines(r),
    ...winRateLines(r),
    `report: ${join(r.output, 'report.html')}  chart: ${join(r.output, 'frontier.svg')}`,
  ].join('\n');
}

/** The two frontier checks in words (terminal and report). */
export function frontierLines(r: DemoResult): string[] {
  const { trained: t, bestOfN: b } = r.frontier;
  const bon = r.rows.filter((x) => x.kind === 'best-of-n');
  const top = bon.length ? bon[bon.length - 1] : null;
  const dpoBest = Math.max(...r.runs.filter((x) => x.kind === 'dpo').flatMap((x) => x.points.map((p) => p.reward)));
  return [
    `DPO checkpoints on or above the frontier of the starting model and Preferred-FT: ` +
      `${t.onOrAbove} of ${t.points} (final points ${t.finalsOnOrAbove} of ${t.finals})`,
    ...(r.frontier.ppo
      ? [verdict(r, 'PPO', r.frontier.ppo, 'ppo'), verdict(r, 'PPO-GT', r.frontier.ppoGt!, 'ppo-gt')]
      : []),
    `DPO checkpoints on or above the best-of-N frontier: ${b.onOrAbove} ` +
      `of ${b.points} (final points ${b.finalsOnOrAbove} of ${b.finals})` +
      (top ? `; best DPO reward ${f(dpoBest, 3)} vs ${top.name} ${f(top.reward, 3)}` : ''),
  ];
}

/**
 * The paper's headline, checked on this run's numbers: do DPO's checkpoints lie on or above the
 * frontier of a PPO variant's checkpoints (and the starting model) at equal KL, within one standard error?
 */
function verdict(r: DemoResult, label: string, c: FrontierCheck, kind: 'ppo' | 'ppo-gt'): string {
  const head =
    `DPO checkpoints on or above ${label}'s frontier at equal KL (within one standard ` +
    `error): ${c.onOrAbove} of ${c.points} (final points ${c.finalsOnOrAbove} of ${c.finals})`;
  if (c.onOrAbove === c.points) return `${head}: yes, as in the paper.`;
  const below = r.runs
    .filter((x) => x.kind === 'dpo')
    .flatMap((x) => x.points.map((p) => ({ beta: x.beta, ...p })))
    .filter((p) => p.reward + (Number.isFinite(p.rewardSe) ? p.rewardSe : 0) < frontierReward(c.hull, p.kl));
  const where = below
    .slice(0, 3)
    .map(
      (p) =>
        `beta ${p.beta} step ${p.step}: reward ${f(p.reward, 3)} ± ${f(p.rewardSe, 3)} ` +
        `at KL ${f(p.kl, 2)}, ${label}'s frontier ${f(frontierReward(c.hull, p.kl), 3)}`,
    )
    .join('; ');
  const ppoMax = Math.max(...r.runs.filter((x) => x.kind === kind).flatMap((x) => x.points.map((p) => p.kl)));
  const why = below.every((p) => p.kl <= ppoMax)
    ? `there ${label} reached more reward for the same KL`
    : `some lie past ${label}'s largest KL (${f(ppoMax, 2)}), where its frontier is held flat at its best reward`;
  return (
    `${head}: ${c.onOrAbove === 0 ? 'no' : 'not everywhere'} ` + `(${where}${below.length > 3 ? '; ...' : ''}); ${why}.`
  );
}

/** The reward model's numbers in words. */
export function rewardModelLines(r: DemoResult): string[] {
  const m = r.rewardModel;
  if (!m) return [];
  return [
    `Reward model: ${m.trainPairs} training pairs (all pairs of each prompt's ` +
      `samples, labelled by the ground-truth reward), ${m.steps} steps; ` +
      `kept step ${m.bestStep} (best held-out pair accuracy ${f(Math.max(...m.curve.map((c) => c.accuracy)), 3)}); ` +
      `accuracy against the ground truth on held-out IMDb prompts ` +
      `${f(m.accuracy, 3)} ± ${f(m.accuracySe, 3)} (${m.accuracyPairs} pairs)`,
  ];
}

/** The win rates against the chosen completions in words. */
export function winRateLines(r: DemoResult): string[] {
  const w = r.winRates;
  if (!w) return [];
  return [
    `Win rate against the held-out chosen completions (${w.prompts} ` +
      `prompts) at temperature ${w.temperatures.join(' / ')}:`,
    ...w.byTemperature.map((x) => `  ${x.name}: ${x.points.map((p) => f(p.winRate, 3)).join(' / ')}`),
  ];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** An SVG document made inline-able: no XML prolog, no namespace declarations (HTML5 needs none). */
export function inlineSvg(svg: string): string {
  return svg.replace(/<\?xml[^>]*>\s*/, '').replace(/\s+xmlns(:\w+)?="[^"]*"/g, '');
}

const maxKl = (r: DemoResult) =>
  Math.max(0, ...r.rows.map((x) => x.kl), ...r.runs.flatMap((x) => x.points.map((p) => p.kl)));

/** A hull drawn on to `kl` (flat after its last point, as frontierReward reads it). */
function extendFlat(hull: readonly { kl: number; reward: number }[], kl: number): { kl: number; reward: number }[] {
  const last = hull[hull.length - 1];
  return last && kl > last.kl ? [...hull, { kl, reward: last.reward }] : [...hull];
}

function frontierSeries(r: DemoResult): ChartSeries[] {
  const start = { x: 0, y: r.start.reward, hidden: true };
  const bon = r.rows.filter((x) => x.kind === 'best-of-n');
  const series: ChartSeries[] = [
    {
      name: 'frontier of start + Preferred-FT',
      points: extendFlat(r.frontier.trained.hull, maxKl(r)).map((p) => ({ x: p.kl, y: p.reward })),
      line: true,
      dashed: true,
      symbols: false,
      color: '#bbbbbb',
    },
    { name: 'starting model', points: [{ ...start, hidden: false, label: 'start' }], color: '#000000' },
    {
      name: 'best-of-N',
      points: [start, ...bon.map((x) => ({ x: x.kl, y: x.reward, label: `N=${x.n}` }))],
      line: true,
      color: '#7f7f7f',
    },
  ];
  for (const run of r.runs) {
    const same = r.runs.filter((x) => x.kind === run.kind);
    series.push({
      name: chartName(run),
      points: [start, ...run.points.map((p) => ({ x: p.kl, y: p.reward }))],
      line: true,
      color: methodColor(run.kind, same.indexOf(run), same.length),
      dashed: run.kind === 'ppo' || run.kind === 'ppo-gt',
    });
  }
  return series;
}

/** Shades of one hue per method (dark to light by strength), so that 15 series stay readable. */
const SHADES: Record<string, string[]> = {
  dpo: ['#08306b', '#2171b5', '#6baed6', '#9ecae1'],
  ppo: ['#67000d', '#cb181d', '#fb6a4a', '#fcae91'],
  'ppo-gt': ['#00441b', '#238b45', '#74c476', '#a1d99b'],
  unlikelihood: ['#3f007d', '#807dba', '#bcbddc'],
  'preferred-ft': ['#ff7f0e'],
};

function methodColor(kind: string, i: number, n: number): string | undefined {
  const shades = SHADES[kind];
  if (!shades || n > shades.length) return undefined;
  return shades[n === 1 ? Math.min(1, shades.length - 1) : i];
}

/** A run's legend name: the table's, with beta and alpha as Greek letters. */
const chartName = (run: Parameters<typeof rowName>[0]): string =>
  rowName(run).replace('beta=', '\u03b2=').replace('alpha=', '\u03b1=');

function curveSeries(r: DemoResult, key: string): ChartSeries[] {
  return r.runs
    .filter((run) => run.kind === 'dpo')
    .map((run) => ({
      name: `DPO \u03b2=${run.beta}`,
      points: run.history.filter((h) => key in h).map((h) => ({ x: h.step, y: h[key] })),
      line: true,
      symbols: false,
    }));
}

function samplesTable(r: DemoResult, shown = 8): string {
  const cols = [{ name: 'starting model', samples: r.start.samples }];
  const maxN = Math.max(0, ...r.rows.filter((x) => x.kind === 'best-of-n').map((x) => x.n!));
  const heads = ['held-out prompt', 'starting model', ...(maxN ? [`best-of-${maxN}`] : []), ...r.runs.map(chartName)];
  const rows: string[] = [];
  for (let i = 0; i < Math.min(shown, r.evalPrompts.length); i++) {
    const cell = (s: { text: string; reward: number } | undefined) =>
      s ? `${esc(s.text)} <span class="r">${f(s.reward, 2)}</span>` : '';
    const start = cols[0].samples[i]?.[0];
    const group = cols[0].samples[i]?.slice(0, maxN) ?? [];
    const best = group.length ? group[pickBest(group.map((s) => s.reward))] : undefined;
    rows.push(
      `<tr><td class="p">${esc(r.evalPrompts[i])}</td><td>${cell(start)}</td>${maxN ? `<td>${cell(best)}</td>` : ''}` +
        r.runs.map((run) => `<td>${cell(run.finalSamples[i]?.[0])}</td>`).join('') +
        '</tr>',
    );
  }
  return `<table class="samples"><tr>${heads.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${rows.join('\n')}</table>`;
}

function resultsTable(r: DemoResult): string {
  const rows = r.rows.map((x) => {
    const note =
      x.kind === 'best-of-n'
        ? `KL bound ${f(x.klBound!, 2)}`
        : x.kind === 'ppo'
          ? `reward model score ${f(x.rmScore ?? NaN, 3)}`
          : '';
    return (
      `<tr><td>${esc(x.name)}</td><td>${x.beta ?? '-'}</td><td>${pm(x.reward, x.rewardSe, 3)}</td>` +
      `<td>${pm(x.kl, x.klSe, 2)}</td><td>${pm(x.winRate, x.winRateSe, 3)}</td><td>${note}</td></tr>`
    );
  });
  return (
    `<table><tr><th>run</th><th>beta</th><th>reward</th><th>KL(&pi; || ` +
    `&pi;<sub>ref</sub>)</th><th>win rate vs start</th><th></th></tr>${rows.join('\n')}</table>`
  );
}

const CSS = `body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}table{border-collapse:collapse;margin:.6em 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f4f4f4}
table.samples td{font-size:12px;max-width:220px}td.p{font-weight:600}.r{color:#888;font-size:11px}
.charts{display:flex;flex-wrap:wrap;gap:12px}code{background:#f4f4f4;padding:0 3px}.note{color:#555}`;

/**
 * Writes frontier.svg, loss.svg, accuracy.svg, winrate-temperature.svg, winrate-training.svg and report.html into
 * r.output.
 */
export async function writeReport(r: DemoResult): Promise<void> {
  const frontier = await renderSvg({
    title: 'Expected reward vs KL to the starting model (held-out review prefixes)',
    xTitle: 'KL(\u03c0 || \u03c0_ref), nats',
    yTitle: 'mean reward',
    series: frontierSeries(r),
    xZero: true,
    width: 620,
    height: 400,
  });
  const loss = await renderSvg({
    title: 'DPO training loss',
    xTitle: 'step',
    yTitle: 'loss',
    series: curveSeries(r, 'loss'),
    width: 420,
    height: 260,
  });
  const acc = await renderSvg({
    title: 'DPO reward accuracy (training batches)',
    xTitle: 'step',
    yTitle: 'chosen reward > rejected',
    series: curveSeries(r, 'rewards/accuracies'),
    width: 420,
    height: 260,
  });
  writeFileSync(join(r.output, 'frontier.svg'), frontier);
  writeFileSync(join(r.output, 'loss.svg'), loss);
  writeFileSync(join(r.output, 'accuracy.svg'), acc);
  const w = r.winRates;
  const byTemp = w
    ? await renderSvg({
        title: 'Win rate against the chosen completions, by sampling temperature',
        xTitle: 'sampling temperature',
        yTitle: 'win rate',
        series: w.byTemperature.map((x) => ({
          name: x.name.replace('beta=', '\u03b2='),
          points: x.points.map((p, i) => ({ x: w.temperatures[i], y: p.winRate })),
          line: true,
          color: x.name.startsWith('starting') ? '#000000' : x.name === 'Preferred-FT' ? '#ff7f0e' : undefined,
        })),
        width: 520,
        height: 320,
      })
    : '';
  const overTraining = w
    ? await renderSvg({
        title:
          `${w.overTraining.name.replace('beta=', '\u03b2=')}: ` +
          `win rate against the chosen completions over training`,
        xTitle: 'step',
        yTitle: 'win rate',
        series: w.overTraining.temperatures.map((t) => ({
          name: `temperature ${t}`,
          points: w.overTraining.points.map((p) => ({ x: p.step, y: p[String(t)] })),
          line: true,
        })),
        width: 520,
        height: 320,
      })
    : '';
  if (w) {
    writeFileSync(join(r.output, 'winrate-temperature.svg'), byTemp);
    writeFileSync(join(r.output, 'winrate-training.svg'), overTraining);
  }
  const rm = r.rewardModel;
  const c = r.config;
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tsdpo demo: DPO on review sentiment, in
miniature</title><style>${CSS}</style></head><body>
<h1>DPO on review sentiment, in miniature</h1>
<p>A reproduction in miniature of the controlled-sentiment experiment of Rafailov et al., <i>Direct Preference
Optimization</i>
(arXiv:2305.18290, Sec. 6.1 and Fig. 2 left), run offline by <code>tsdpo demo</code> on CPU in
${f(r.seconds.total ?? 0, 0)} s.
The starting (reference) model is a small GPT-2 pre-trained by <code>tsdpo pretrain</code> on review sentences and
public-domain prose.
Prompts are the first words of review sentences (training: ${esc(c.train_sets.join(', '))}; evaluation: held-out IMDb
sentences); the reward of a completion is sigmoid(AFINN score / 2) of the completion's text
(0.5 = no sentiment word). ${r.pairs.count} preference pairs were built from ${c.samples_per_prompt} samples per
training prompt
(best vs worst by reward; ${r.pairs.skippedTies} of ${r.pairs.prompts} prompts skipped because all their samples tied;
mean reward of chosen ${f(r.pairs.meanChosen, 3)}, rejected ${f(r.pairs.meanRejected, 3)}).</p>
<h2>Reward vs KL frontier</h2>
<p class="note">Every point is evaluated on ${r.evalPrompts.length} held-out prompts: the mean reward of sampled
completions, and
KL(&pi; || &pi;<sub>ref</sub>) = E<sub>y~&pi;</sub>[log &pi;(y|x) &minus; log &pi;<sub>ref</sub>(y|x)] estimated on the
same
samples (${c.eval_samples} per prompt, plain sampling at temperature 1, at most ${c.max_new_tokens} tokens). Each DPO
and Preferred-FT run is a line through its
checkpoints (every ${Math.max(1, Math.round(c.steps / c.checkpoints))} steps), starting at the starting model. Best-of-N
keeps the highest-reward completion of N samples of the starting
model; its reward and KL are computed exactly from the starting model's reward distribution on each prompt
(${c.ref_samples} samples per prompt):
KL = &Sigma;<sub>j</sub> q<sub>j</sub> log(q<sub>j</sub>/p<sub>j</sub>) with q<sub>j</sub> = F<sub>j</sub><sup>N</sup>
&minus; F<sub>j&minus;1</sub><sup>N</sup>,
at most log N &minus; (N&minus;1)/N (less when completions tie). The dashed grey line is the upper concave hull of the
starting model and the
Preferred-FT checkpoints (a point counts as on a frontier when within one standard error of its reward).
Unlikelihood maximises log p(chosen) and minimises &alpha; log p(rejected) (token means, so &alpha; = 0 is
Preferred-FT), with DPO's steps and learning rate.
PPO (dashed lines) trains with the learned reward model below, PPO-GT with the ground-truth reward itself, each at the
KL coefficient shown
(the &beta; of the RLHF objective, per token, k1 estimator), ${c.ppo_updates} updates of ${c.ppo_batch} rollouts from
the training prompts sampled at temperature 1
(so PPO's KL and the evaluation's KL are the same quantity), ${c.ppo_epochs} PPO epochs of one mini-batch per update,
learning rate ${c.ppo_learning_rate};
each is evaluated at ${c.checkpoints} evenly spaced updates exactly as the DPO runs are.</p>
<ul>${frontierLines(r)
    .map((l) => `<li>${esc(l)}</li>`)
    .join('')}</ul>
${
  rm
    ? `<h2>Reward model</h2>
<p class="note">Trained by the loop of <code>tsdpo reward</code> (Bradley-Terry loss) from the starting model with a new
score head, on all pairs of the
${c.samples_per_prompt} samples of each training prompt whose ground-truth rewards differ (${rm.trainPairs} pairs from
90% of ${c.rm_prompts > 0 ? `the first ${c.rm_prompts}` : 'the'} training prompts; ${rm.heldOutPairs} pairs of the other
10% choose the checkpoint),
${rm.steps} steps of ${2 * c.batch_size} pairs (${c.rm_epochs} epoch(s)), learning rate ${c.rm_learning_rate}. Held-out
pair accuracy at each evaluation:
${rm.curve.map((x) => `step ${x.step}: ${f(x.accuracy, 3)}`).join(', ')}; the weights of step ${rm.bestStep} are kept.
Accuracy against the ground truth on the held-out IMDb prompts (every pair of ${c.samples_per_prompt} samples of the
starting model with different rewards):
<b>${f(rm.accuracy, 3)} &plusmn; ${f(rm.accuracySe, 3)}</b> over ${rm.accuracyPairs} pairs. PPO's table row also gives
this model's mean score of PPO's final samples: when it rises while the ground-truth reward does not, PPO is exploiting
the reward model.</p>`
    : ''
}
<p class="note">Best-of-N is an inference-time method: it draws N completions from the starting model for every prompt,
and needs the
reward model when generating. At the same KL it is hard to beat: Gao et al. (2022, arXiv:2210.10760) found it more
KL-efficient than RL with PPO, and Yang et al.
(2024, <i>Asymptotics of Language Model Alignment</i>) show it approaches the KL-optimal policy. But its KL grows like
log N, so high
rewards need many samples per prompt; DPO trains one policy, sampled once per prompt, that goes further.</p>
${inlineSvg(frontier)}
${resultsTable(r)}
<p class="note">&plusmn; one standard error over samples (win rates: over prompts). Every policy is sampled with the
same random numbers (seed ${c.seed + 3}).
The win rate is the paper's other measure (Sec. 6.2, there judged by GPT-4): how often a policy's completion beats one
of the starting model's
completions for the same prompt, judged by the reward (a tie counts 1/2); every sample meets each of the starting
model's ${c.ref_samples} per prompt.
For best-of-N it is exact over the starting model's reward distribution, &Sigma;<sub>j</sub> q<sub>j</sub>
(F<sub>j&minus;1</sub> + p<sub>j</sub>/2) (N/(N+1) without ties).</p>
${
  w
    ? `<h2>Win rate against the chosen completions</h2>
<p class="note">The analogues of the paper's Fig. 2 right (there: win rate against the reference summaries by
temperature, judged by GPT-4) and
Fig. 3 (over training). The held-out prompts get a "dataset" made as the training pairs are: ${c.samples_per_prompt}
samples of the starting model,
the one with the highest reward is the chosen completion (${w.prompts} of ${r.evalPrompts.length} prompts; the others'
samples all tied). Each policy
samples ${c.eval_samples} completions per prompt at each temperature; a sample wins when its reward is higher than the
chosen one's (a tie counts 1/2).
DPO and PPO at their middle strength (${esc(w.byTemperature.map((x) => x.name).join(', '))}).</p>
<div class="charts">${inlineSvg(byTemp)}${inlineSvg(overTraining)}</div>
<table><tr><th>policy</th>${w.temperatures.map((t) => `<th>T = ${t}</th>`).join('')}</tr>${w.byTemperature
        .map(
          (x) =>
            `<tr><td>${esc(x.name)}</td>` +
            `${x.points.map((p) => `<td>${pm(p.winRate, p.winRateSe, 3)}</td>`).join('')}</tr>`,
        )
        .join('')}</table>`
    : ''
}
<h2>DPO training curves</h2>
<div class="charts">${inlineSvg(loss)}${inlineSvg(acc)}</div>
<p class="note">${c.steps} steps of ${c.batch_size} pairs, AdamW, learning rate ${c.learning_rate}; the loss starts at
ln 2 = 0.693 and the accuracy at 0 (policy = reference: every margin is 0).</p>
<h2>Sample completions, before and after</h2>
<p class="note">The first sample of each policy on the first held-out prompts (the same random numbers for every
policy); the grey number is the reward.</p>
${samplesTable(r)}
<h2>Settings</h2>
<pre>${esc(JSON.stringify({ ...c, model: r.model }, null, 2))}</pre>
</body></html>
`;
  writeFileSync(join(r.output, 'report.html'), html);
}
