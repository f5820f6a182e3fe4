import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { TimingHistogram } from '../shared/metrics/timing-histogram.ts';

/** The same histogram both ways: prom-client's own, and ours; each on a registry of its own with the same default label. */
function pair() {
  const opts = { name: 'courier_test_seconds', help: 'a test', labelNames: ['method', 'route', 'status'] as const, buckets: [0.001, 0.005, 0.01, 0.5] };
  const theirs = new Registry();
  const ours = new Registry();
  theirs.setDefaultLabels({ process: 'web' });
  ours.setDefaultLabels({ process: 'web' });
  return { theirs, ours, reference: new Histogram({ ...opts, registers: [theirs] }), timing: new TimingHistogram({ ...opts, registers: [ours] }) };
}

describe('TimingHistogram', () => {
  it("is exposed exactly as prom-client's Histogram of the same observations (on a bound, past the last, at zero; two label sets)", async () => {
    const { theirs, ours, reference, timing } = pair();
    const observations: Array<[{ method: string; route: string; status: string }, number]> = [
      [{ method: 'GET', route: '/healthz', status: '200' }, 0],
      [{ method: 'GET', route: '/healthz', status: '200' }, 0.001],
      [{ method: 'GET', route: '/healthz', status: '200' }, 0.0011],
      [{ method: 'GET', route: '/healthz', status: '200' }, 0.02],
      [{ method: 'GET', route: '/healthz', status: '200' }, 7],
      [{ method: 'POST', route: '/v1/orders', status: '202' }, 0.004],
    ];
    for (const [labels, seconds] of observations) {
      reference.labels(labels).observe(seconds);
      timing.timer(labels).observe(seconds);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    const withoutExemplars = (metrics: Awaited<ReturnType<Registry['getMetricsAsJSON']>>) =>
      metrics.map((m) => ({ ...m, values: m.values.map((value) => {
        const { exemplar: _exemplar, ...rest } = value as typeof value & { exemplar?: unknown };
        return rest;
      }) }));
    expect(await ours.getMetricsAsJSON()).toEqual(withoutExemplars(await theirs.getMetricsAsJSON()));
  });

  it('hands out one timer per label set, and a reset zeroes it, as prom-client does (the timer stays good)', async () => {
    const { theirs, ours, reference, timing } = pair();
    const labels = { method: 'GET', route: '/healthz', status: '200' };
    const timer = timing.timer(labels);
    expect(timing.timer({ ...labels })).toBe(timer);
    timer.observe(0.002);
    reference.labels(labels).observe(0.002);
    ours.resetMetrics();
    theirs.resetMetrics();
    timer.observe(0.003);
    reference.labels(labels).observe(0.003);
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toContain('courier_test_seconds_count{process="web",method="GET",route="/healthz",status="200"} 1\n');
  });
});
