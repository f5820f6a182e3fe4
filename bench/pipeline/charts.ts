/**
 * The pipeline bench's pictures, drawn from its results JSON (bench/results/pipeline-latest.json):
 *   pipeline-capacity.svg       offered rate against dispatched rate and p99 202 -> DISPATCHED, the
 *                               sustainable rate (the knee) marked;
 *   pipeline-cpu-per-order.svg  CPU per dispatched order at each step, by process.
 * `npm run bench:charts` draws them again from the JSON alone.
 */
import { join } from 'node:path';
import { writeSvg, type ChartSpec } from '../lib/charts/render-svg.ts';
import { RESULTS_DIR } from '../lib/results.ts';

/** What the charts read from the results JSON. */
export interface ChartInput {
  readonly steps: readonly {
    rate: number;
    dispatchedPerSec: number;
    acceptedPerSec: number;
    latencyMs: { p50: number | string; p99: number | string };
    cpuUsPerOrder: Record<string, number | null>;
    sustainable: boolean;
  }[];
  readonly sustainableRate: number | null;
  readonly targets: { readonly maxP99Ms: number; readonly maxCpuMsPerOrder: number };
  readonly run: string;
}

export const CHART_FILES = { capacity: 'pipeline-capacity.svg', cpu: 'pipeline-cpu-per-order.svg' } as const;

/** Infinite latencies (orders never dispatched) are drawn at the top of the axis. */
const finiteMs = (v: number | string, cap: number) => (typeof v === 'number' && Number.isFinite(v) ? v : cap);

function capacitySpec(input: ChartInput): ChartSpec {
  const cap = 600_000;
  const points = input.steps.map((s) => ({
    offered: s.rate,
    dispatched: Math.round(s.dispatchedPerSec),
    p99: Math.max(1, Math.round(finiteMs(s.latencyMs.p99, cap))),
    verdict: s.sustainable ? 'sustainable' : 'not sustainable',
  }));
  const maxRate = Math.max(...points.map((p) => p.offered), 1);
  const x = { field: 'offered', type: 'quantitative', title: 'offered, orders/s', scale: { domain: [0, maxRate * 1.05] } } as const;
  const knee = input.sustainableRate === null ? [] : [{ offered: input.sustainableRate, label: `sustainable: ${input.sustainableRate.toLocaleString('en-US')}/s` }];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Pipeline capacity: offered against dispatched, and p99 202 -> DISPATCHED', subtitle: input.run },
    width: 640,
    height: 360,
    layer: [
      {
        layer: [
          { data: { values: [{ offered: 0, dispatched: 0 }, { offered: maxRate, dispatched: maxRate }] }, mark: { type: 'line', strokeDash: [4, 4], color: '#bbb' }, encoding: { x, y: { field: 'dispatched', type: 'quantitative' } } },
          {
            data: { values: points },
            mark: { type: 'line', point: { size: 60, filled: true }, color: '#1f77b4' },
            encoding: { x, y: { field: 'dispatched', type: 'quantitative', title: 'dispatched, orders/s (blue; dashed: all of it)', axis: { titleColor: '#1f77b4' } } },
          },
          ...(knee.length
            ? [
                { data: { values: knee }, mark: { type: 'rule' as const, color: '#2ca02c', strokeWidth: 2 }, encoding: { x } },
                { data: { values: knee }, mark: { type: 'text' as const, align: 'left' as const, dx: 4, dy: -150, color: '#2ca02c', fontWeight: 'bold' as const }, encoding: { x, text: { field: 'label' } } },
              ]
            : []),
        ],
      },
      {
        layer: [
          {
            data: { values: points },
            mark: { type: 'line', point: { size: 60, shape: 'square', filled: true, color: '#d62728' }, color: '#d62728', strokeDash: [6, 2] },
            encoding: {
              x,
              y: { field: 'p99', type: 'quantitative', scale: { type: 'log' }, title: 'p99 202 -> DISPATCHED, ms (red, log; line: 2 s target)', axis: { titleColor: '#d62728', orient: 'right' } },
            },
          },
          { data: { values: [{ p99: input.targets.maxP99Ms }] }, mark: { type: 'rule', color: '#d62728', opacity: 0.5 }, encoding: { y: { field: 'p99', type: 'quantitative' } } },
        ],
      },
    ],
    resolve: { scale: { y: 'independent' } },
  } as ChartSpec;
}

function cpuSpec(input: ChartInput): ChartSpec {
  const values = input.steps.flatMap((s) =>
    Object.entries(s.cpuUsPerOrder)
      .filter(([, us]) => us !== null && Number.isFinite(us))
      .map(([process, us]) => ({ step: `${s.rate.toLocaleString('en-US')}/s`, rate: s.rate, process, us: Math.round(us!) })),
  );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'CPU per dispatched order, by process', subtitle: input.run },
    width: 640,
    height: 360,
    layer: [
      {
        data: { values },
        mark: 'bar',
        encoding: {
          x: { field: 'step', type: 'ordinal', sort: { field: 'rate' }, title: 'step (offered rate)', axis: { labelAngle: 0 } },
          y: { field: 'us', type: 'quantitative', stack: 'zero', title: 'CPU µs per dispatched order' },
          color: { field: 'process', type: 'nominal', title: 'process', scale: { scheme: 'tableau10' } },
          order: { field: 'process' },
        },
      },
      {
        data: { values: [{ us: input.targets.maxCpuMsPerOrder * 1000, label: `target ${input.targets.maxCpuMsPerOrder} ms` }] },
        layer: [
          { mark: { type: 'rule', color: 'black', strokeDash: [4, 4] }, encoding: { y: { field: 'us', type: 'quantitative' } } },
          { mark: { type: 'text', align: 'left', dx: 4, dy: -6, x: 0 }, encoding: { y: { field: 'us', type: 'quantitative' }, text: { field: 'label' } } },
        ],
      },
    ],
  } as ChartSpec;
}

/** Draws both pictures beside the results; resolves with their paths. */
export async function drawPipelineCharts(input: ChartInput): Promise<string[]> {
  const files = [join(RESULTS_DIR, CHART_FILES.capacity), join(RESULTS_DIR, CHART_FILES.cpu)];
  await writeSvg(files[0]!, capacitySpec(input));
  await writeSvg(files[1]!, cpuSpec(input));
  return files;
}
