/**
 * A chart as an SVG file, from a Vega-Lite spec (vega-lite compiles it, vega renders it headless:
 * no browser, no canvas; text widths are estimated). The benches' pictures are drawn from their
 * results JSON with this, never by hand.
 */
import { writeFileSync } from 'node:fs';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export type ChartSpec = TopLevelSpec;

export async function writeSvg(file: string, spec: ChartSpec): Promise<void> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    writeFileSync(file, `${await view.toSVG()}\n`);
  } finally {
    view.finalize();
  }
}
