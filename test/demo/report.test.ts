// The demo report: frontier.svg / loss.svg / accuracy.svg and report.html are written; the HTML is one
// self-contained file (inline SVG and CSS, nothing to load: no http(s) or protocol-relative URLs, no
// external scripts, stylesheets or images); the table and the JSON summary carry every run.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DemoResult } from '../../src/demo/demo.js';
import type { RunKind } from '../../src/demo/runs.js';
import { summaryJson } from '../../src/demo/demo.js';
import { DEMO_OPTIONS, checkDemoConfig, demoSpecs, QUICK_DEMO } from '../../src/demo/options.js';
import { formatTable, inlineSvg, writeReport } from '../../src/demo/report.js';
import { defaultsOf } from '../../src/train/config.js';
import { tempRoot } from '../train/tiny.js';

function fakeResult(out: string): DemoResult {
  const s = (text: string, reward: number) => ({ text, reward, ids: [1] });
  const config = defaultsOf(DEMO_OPTIONS);
  const run = (name: string, kind: RunKind, beta: number | null, top: number, alpha?: number) => ({
    name,
    kind,
    beta,
    ...(alpha !== undefined ? { alpha } : {}),
    seconds: 1,
    points: [
      { step: 30, reward: 0.6, rewardSe: 0.01, kl: 0.5, klSe: 0.1, winRate: 0.55, winRateSe: 0.02 },
      { step: 60, reward: top, rewardSe: 0.01, kl: 2, klSe: 0.2, winRate: top - 0.05, winRateSe: 0.02 },
    ],
    history: [
      { step: 1, loss: 0.693, 'rewards/accuracies': 0 },
      { step: 2, loss: 0.6, 'rewards/accuracies': 0.7 },
    ],
    finalSamples: [[s(' a <great> film & "fun" http://example.com', 0.95)], [s(' so so', 0.5)]],
  });
  return {
    config,
    model: '/m',
    output: out,
    evalPrompts: ['I <b>loved</b>', 'The plot'],
    rows: [
      {
        name: 'starting model (SFT)',
        kind: 'start',
        beta: null,
        reward: 0.55,
        rewardSe: 0.01,
        kl: 0,
        klSe: 0,
        winRate: 0.5,
        winRateSe: 0,
      },
      {
        name: 'best-of-2',
        kind: 'best-of-n',
        beta: null,
        reward: 0.6,
        rewardSe: NaN,
        kl: 0.15,
        klSe: NaN,
        winRate: 0.62,
        winRateSe: 0.01,
        n: 2,
        klBound: 0.193,
      },
      {
        name: 'Preferred-FT',
        kind: 'preferred-ft',
        beta: null,
        reward: 0.62,
        rewardSe: 0.01,
        kl: 2,
        klSe: 0.2,
        winRate: 0.57,
        winRateSe: 0.02,
      },
      {
        name: 'DPO beta=0.1',
        kind: 'dpo',
        beta: 0.1,
        reward: 0.8,
        rewardSe: 0.01,
        kl: 2,
        klSe: 0.2,
        winRate: 0.75,
        winRateSe: 0.02,
      },
      {
        name: 'Unlikelihood alpha=0.2',
        kind: 'unlikelihood',
        beta: null,
        alpha: 0.2,
        reward: 0.6,
        rewardSe: 0.01,
        kl: 2,
        klSe: 0.2,
        winRate: 0.55,
        winRateSe: 0.02,
      },
      {
        name: 'PPO kl_coef=0.05',
        kind: 'ppo',
        beta: 0.05,
        reward: 0.7,
        rewardSe: 0.01,
        kl: 2,
        klSe: 0.2,
        winRate: 0.65,
        winRateSe: 0.02,
        rmScore: 1.5,
      },
      {
        name: 'PPO-GT kl_coef=0.05',
        kind: 'ppo-gt',
        beta: 0.05,
        reward: 0.9,
        rewardSe: 0.01,
        kl: 2,
        klSe: 0.2,
        winRate: 0.85,
        winRateSe: 0.02,
      },
    ],
    runs: [
      run('preferred-ft', 'preferred-ft', null, 0.62),
      run('dpo-beta-0.1', 'dpo', 0.1, 0.8),
      run('unlikelihood-alpha-0.2', 'unlikelihood', null, 0.6, 0.2),
      run('ppo-kl-0.05', 'ppo', 0.05, 0.7),
      run('ppo-gt-kl-0.05', 'ppo-gt', 0.05, 0.9),
    ],
    rewardModel: {
      dir: '/m/rm',
      trainPairs: 100,
      heldOutPairs: 10,
      steps: 8,
      curve: [
        { step: 4, accuracy: 0.7 },
        { step: 8, accuracy: 0.8 },
      ],
      bestStep: 8,
      seconds: 1,
      accuracy: 0.78,
      accuracySe: 0.03,
      accuracyPairs: 60,
    },
    winRates: {
      prompts: 2,
      temperatures: [0.25, 1],
      byTemperature: [
        {
          name: 'starting model (SFT)',
          points: [
            { winRate: 0.4, winRateSe: 0.1 },
            { winRate: 0.2, winRateSe: 0.1 },
          ],
        },
        {
          name: 'DPO beta=0.1',
          points: [
            { winRate: 0.7, winRateSe: 0.1 },
            { winRate: 0.6, winRateSe: 0.1 },
          ],
        },
      ],
      overTraining: {
        name: 'DPO beta=0.1',
        temperatures: [0.25, 1],
        points: [
          { step: 0, '0.25': 0.4, '1': 0.2 },
          { step: 60, '0.25': 0.7, '1': 0.6 },
        ],
      },
    },
    start: {
      reward: 0.55,
      rewardSe: 0.01,
      samples: [
        [s(' meh', 0.5), s(' good', 0.82)],
        [s(' bad', 0.18), s(' ok', 0.5)],
      ],
    },
    pairs: { count: 10, skippedTies: 2, prompts: 12, meanChosen: 0.7, meanRejected: 0.4 },
    frontier: {
      trained: {
        hull: [
          { kl: 0, reward: 0.55 },
          { kl: 2, reward: 0.62 },
        ],
        points: 2,
        onOrAbove: 2,
        finals: 1,
        finalsOnOrAbove: 1,
      },
      bestOfN: {
        hull: [
          { kl: 0, reward: 0.55 },
          { kl: 0.15, reward: 0.6 },
        ],
        points: 2,
        onOrAbove: 1,
        finals: 1,
        finalsOnOrAbove: 1,
      },
      ppo: {
        hull: [
          { kl: 0, reward: 0.55 },
          { kl: 2, reward: 0.7 },
        ],
        points: 2,
        onOrAbove: 2,
        finals: 1,
        finalsOnOrAbove: 1,
      },
      ppoGt: {
        hull: [
          { kl: 0, reward: 0.55 },
          { kl: 2, reward: 0.9 },
        ],
        points: 2,
        onOrAbove: 0,
        finals: 1,
        finalsOnOrAbove: 0,
      },
    },
    seconds: { total: 12 },
  };
}

test('writeReport: SVG charts and a self-contained report.html', async () => {
  const out = tempRoot();
  const r = fakeResult(out);
  await writeReport(r);
  for (const f of [
    'frontier.svg',
    'loss.svg',
    'accuracy.svg',
    'winrate-temperature.svg',
    'winrate-training.svg',
    'report.html',
  ])
    assert.ok(existsSync(join(out, f)), f);
  const svg = readFileSync(join(out, 'frontier.svg'), 'utf8');
  assert.match(svg, /^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/, 'the standalone SVG declares its namespace');
  assert.match(svg, /DPO β=0\.1/);
  assert.match(svg, /best-of-N/);
  for (const name of ['PPO kl_coef=0.05', 'PPO-GT kl_coef=0.05', 'Unlikelihood α=0.2', 'Preferred-FT'])
    assert.ok(svg.includes(name), name);
  assert.match(readFileSync(join(out, 'winrate-temperature.svg'), 'utf8'), /DPO β=0\.1/);
  assert.match(readFileSync(join(out, 'winrate-training.svg'), 'utf8'), /temperature 0\.25/);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.match(html, /^<!doctype html>/);
  assert.equal((html.match(/<svg/g) ?? []).length, 5, 'five inline charts');
  // The verdicts come from the numbers: all of DPO's points on PPO's frontier, none on PPO-GT's (0.8 + 0.01 < 0.9 at KL
  // 2).
  assert.match(html, /on or above PPO's frontier at equal KL[^<]*2 of 2[^<]*yes, as in the paper/);
  assert.match(html, /on or above PPO-GT's frontier at equal KL[^<]*0 of 2[^<]*: no \(beta 0\.1 step 30/);
  assert.match(html, /accuracy against the ground truth[^<]*<b>0\.780 &plusmn; 0\.030<\/b>/i);
  // Nothing to fetch: no URL in src / href / url(), no @import, no external script, stylesheet or image.
  // (The completion text above contains "http://example.com": it is only text, HTML-escaped.)
  assert.doesNotMatch(html, /(src|href|xlink:href)\s*=\s*["']?\s*(https?:)?\/\//i);
  assert.doesNotMatch(html, /url\(\s*["']?\s*(https?:)?\/\//i);
  assert.doesNotMatch(html, /@import|<link\b|<script\b|<img\b|<iframe\b/i);
  assert.doesNotMatch(
    html.replace(/http:\/\/example\.com/g, ''),
    /https?:\/\//,
    'no URL at all besides the sample text',
  );
  assert.ok(!html.includes('<great>') && html.includes('&lt;great&gt;'), 'sample text is escaped');
  assert.ok(html.includes('I &lt;b&gt;loved&lt;/b&gt;'), 'prompts are escaped');
});

test('inlineSvg drops the XML prolog and namespace declarations', () => {
  assert.equal(
    inlineSvg(
      '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" ' +
        'xmlns:xlink="http://www.w3.org/1999/xlink" width="2"><g/></svg>',
    ),
    '<svg width="2"><g/></svg>',
  );
});

test('formatTable and summaryJson: one row per run, with beta, reward, KL and win rate', () => {
  const r = fakeResult('/tmp/x');
  const table = formatTable(r).split('\n');
  assert.equal(table.length, 2 + r.rows.length);
  assert.match(table[0], /^run\s+beta\s+reward\s+KL\s+win rate/);
  assert.match(table[5], /^DPO beta=0\.1\s+0\.1\s+0\.800 ± 0\.010\s+2\.00 ± 0\.20\s+0\.750 ± 0\.020/);
  assert.match(table[7], /^PPO kl_coef=0\.05\s+0\.05\s+0\.700 ± 0\.010.*reward model score 1\.500/);
  const j = summaryJson(r) as {
    runs: { name: string; beta: number | null; reward: number; kl: number; win_rate: number }[];
    checkpoints: unknown[];
    [k: string]: unknown;
  };
  assert.deepEqual(
    j.runs.map((x) => [x.name, x.beta, x.reward, x.kl, x.win_rate]),
    [
      ['starting model (SFT)', null, 0.55, 0, 0.5],
      ['best-of-2', null, 0.6, 0.15, 0.62],
      ['Preferred-FT', null, 0.62, 2, 0.57],
      ['DPO beta=0.1', 0.1, 0.8, 2, 0.75],
      ['Unlikelihood alpha=0.2', null, 0.6, 2, 0.55],
      ['PPO kl_coef=0.05', 0.05, 0.7, 2, 0.65],
      ['PPO-GT kl_coef=0.05', 0.05, 0.9, 2, 0.85],
    ],
  );
  assert.equal(j.checkpoints.length, 10);
  assert.deepEqual(Object.keys(j.frontier as object), ['trained', 'best_of_n', 'ppo', 'ppo_gt']);
  assert.equal((j.reward_model as { ground_truth_accuracy: number }).ground_truth_accuracy, 0.78);
  assert.deepEqual((j.win_rates_vs_chosen as { by_temperature: unknown[] }).by_temperature[1], {
    name: 'DPO beta=0.1',
    win_rate: [0.7, 0.6],
    win_rate_se: [0.1, 0.1],
  });
  assert.doesNotThrow(() => JSON.parse(JSON.stringify(j)));
});

test('demo options: --quick defaults, checks that name the option', () => {
  const quick = defaultsOf(demoSpecs(true) as typeof DEMO_OPTIONS);
  for (const [k, v] of Object.entries(QUICK_DEMO)) assert.deepEqual((quick as Record<string, unknown>)[k], v, k);
  const base = defaultsOf(DEMO_OPTIONS);
  assert.deepEqual(checkDemoConfig(base).betas.length >= 3, true, 'at least three betas by default');
  assert.deepEqual(
    [checkDemoConfig(quick).betas.length, checkDemoConfig(quick).klCoefs.length, checkDemoConfig(quick).alphas.length],
    [1, 1, 1],
    'one strength per method in --quick',
  );
  assert.equal(checkDemoConfig(base).klCoefs.length, 3, 'three KL strengths of PPO and PPO-GT by default');
  assert.deepEqual(checkDemoConfig({ ...base, ppo_kl_coefs: [''] }).klCoefs, [], 'an empty list: no PPO runs');
  assert.throws(() => checkDemoConfig({ ...base, ppo_kl_coefs: ['-0.1'] }), /--ppo_kl_coefs/);
  assert.throws(() => checkDemoConfig({ ...base, temperatures: ['0'] }), /--temperatures/);
  assert.throws(() => checkDemoConfig({ ...base, betas: ['0.1', '-1'] }), /--betas/);
  assert.throws(() => checkDemoConfig({ ...base, best_of: ['64'] }), /--best_of .*ref_samples/);
  assert.throws(() => checkDemoConfig({ ...base, samples_per_prompt: 1 }), /--samples_per_prompt/);
});
