/**
 * `npm run bench:charts`: draws the benches' pictures again from their results JSON alone
 * (bench/results/pipeline-latest.json), e.g. after a chart's spec changed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { drawPipelineCharts, type ChartInput } from './pipeline/charts.ts';
import { RESULTS_DIR } from './lib/results.ts';

const pipeline = JSON.parse(readFileSync(join(RESULTS_DIR, 'pipeline-latest.json'), 'utf8')) as { chart?: ChartInput };
if (!pipeline.chart) throw new Error('bench/results/pipeline-latest.json has no chart data: run npm run bench:pipeline first');
for (const file of await drawPipelineCharts(pipeline.chart)) console.log(`drew ${file}`);
