// Charts of the demo report as standalone SVG, drawn by Vega (rendered in Node with view.toSVG(),
// no browser, no network): the reward-vs-KL frontier and the DPO training curves.
import type * as vega from 'vega';

export interface ChartPoint {
  x: number;
  y: number;
  /** A short text drawn next to the point (e.g. "N=4", "step 60"). */
  label?: string;
  /** On the line but without a symbol (e.g. a run's starting point, drawn by another series). */
  hidden?: boolean;
}

export interface ChartSeries {
  name: string;
  points: ChartPoint[];
  /** Join the points with a line (in the given order). */
  line?: boolean;
  dashed?: boolean;
  /** Draw the points (default true). */
  symbols?: boolean;
  /** Fixed colour (CSS); default from the category palette. */
  color?: string;
}

export interface LineChart {
  title: string;
  xTitle: string;
  yTitle: string;
  series: ChartSeries[];
  width?: number;
  height?: number;
  /** Start the x axis at 0. */
  xZero?: boolean;
}

const PALETTE = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#9467bd',
  '#17becf',
  '#8c564b',
  '#e377c2',
  '#bcbd22',
  '#ff7f0e',
  '#7f7f7f',
];
const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif';

/** The Vega specification of a chart (exposed for tests and for anyone who wants to restyle it). */
export function chartSpec(c: LineChart): vega.Spec {
  // Series without a fixed colour take the palette's colours in order, skipping the fixed ones.
  const fixed = new Set(c.series.map((s) => s.color).filter(Boolean));
  const free = PALETTE.filter((p) => !fixed.has(p));
  let next = 0;
  const colors = c.series.map((s) => s.color ?? free[next++ % free.length]);
  const rows = c.series.flatMap((s, si) =>
    s.points.map((p, i) => ({
      series: s.name,
      order: i,
      x: p.x,
      y: p.y,
      label: p.label ?? '',
      line: s.line ?? false,
      dash: s.dashed ?? false,
      symbol: (s.symbols ?? true) && !p.hidden,
      si,
    })),
  );
  return {
    width: c.width ?? 560,
    height: c.height ?? 360,
    padding: 8,
    background: 'white',
    title: { text: c.title, fontSize: 14 },
    config: {
      title: { font: FONT },
      axis: { labelFont: FONT, titleFont: FONT },
      legend: { labelFont: FONT, titleFont: FONT },
      text: { font: FONT },
    },
    data: [
      { name: 'points', values: rows },
      { name: 'lines', source: 'points', transform: [{ type: 'filter', expr: 'datum.line' }] },
      { name: 'dots', source: 'points', transform: [{ type: 'filter', expr: 'datum.symbol' }] },
    ],
    scales: [
      {
        name: 'x',
        type: 'linear',
        domain: { data: 'points', field: 'x' },
        range: 'width',
        nice: true,
        zero: c.xZero ?? false,
      },
      { name: 'y', type: 'linear', domain: { data: 'points', field: 'y' }, range: 'height', nice: true, zero: false },
      { name: 'color', type: 'ordinal', domain: c.series.map((s) => s.name), range: colors },
    ],
    axes: [
      { orient: 'bottom', scale: 'x', title: c.xTitle, grid: true, gridOpacity: 0.3 },
      { orient: 'left', scale: 'y', title: c.yTitle, grid: true, gridOpacity: 0.3 },
    ],
    legends: [{ fill: 'color', stroke: 'color', title: '', orient: 'right', symbolType: 'circle', labelLimit: 260 }],
    marks: [
      {
        type: 'group',
        from: { facet: { name: 'one', data: 'lines', groupby: 'series' } },
        marks: [
          {
            type: 'line',
            from: { data: 'one' },
            sort: { field: 'datum.order' },
            encode: {
              enter: {
                x: { scale: 'x', field: 'x' },
                y: { scale: 'y', field: 'y' },
                stroke: { scale: 'color', field: 'series' },
                strokeWidth: { value: 2 },
                strokeDash: { signal: 'datum.dash ? [6, 4] : [1, 0]' },
                strokeOpacity: { value: 0.8 },
              },
            },
          },
        ],
      },
      {
        type: 'symbol',
        from: { data: 'dots' },
        encode: {
          enter: {
            x: { scale: 'x', field: 'x' },
            y: { scale: 'y', field: 'y' },
            fill: { scale: 'color', field: 'series' },
            size: { value: 50 },
            stroke: { value: 'white' },
            strokeWidth: { value: 0.8 },
          },
        },
      },
      {
        type: 'text',
        from: { data: 'dots' },
        encode: {
          enter: {
            x: { scale: 'x', field: 'x', offset: 6 },
            y: { scale: 'y', field: 'y', offset: -6 },
            text: { field: 'label' },
            fontSize: { value: 10 },
            fill: { value: '#444' },
          },
        },
      },
    ],
  };
}

/** The chart as an SVG document (with its XML namespace, so it opens on its own). */
export async function renderSvg(c: LineChart): Promise<string> {
  const { View, parse } = await loadVega();
  const view = new View(parse(chartSpec(c)), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** vega, an optional peer dependency of tsdpo (the demo's charts only), loaded when a chart is drawn. */
export async function loadVega(): Promise<typeof vega> {
  try {
    return await import('vega');
  } catch (e) {
    throw new Error(
      'demo charts: the npm package "vega" is not installed; it is an optional peer dependency of tsdpo, ' +
        `needed by the demo's report only: \`npm install vega\` (a clone ` +
        `of tsdpo has it after \`npm ci\`) (${(e as Error).message})`,
    );
  }
}
