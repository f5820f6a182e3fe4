import type { Metric, Registry } from 'prom-client';

/** One label set's timer. */
export interface Timer {
  observe(seconds: number): void;
}

class LabelSetTimer implements Timer {
  /** Observations per bucket (not cumulative: the exposition adds them up); past the last bound, only in `count`. */
  readonly perBucket: Float64Array;
  readonly labels: Readonly<Record<string, string>>;
  private readonly bounds: readonly number[];
  sum = 0;
  count = 0;

  constructor(labels: Readonly<Record<string, string>>, bounds: readonly number[]) {
    this.labels = labels;
    this.bounds = bounds;
    this.perBucket = new Float64Array(bounds.length);
  }

  observe(seconds: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    if (i < bounds.length) this.perBucket[i]! += 1;
    this.sum += seconds;
    this.count += 1;
  }
}

interface ExportedValue {
  readonly labels: Readonly<Record<string, string | number>>;
  readonly sharedLabels: Readonly<Record<string, string>>;
  readonly value: number;
  readonly metricName: string;
}

export interface TimingHistogramOptions<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  readonly buckets: readonly number[];
  readonly registers: readonly Registry[];
}

/**
 * A histogram of the time each request took, exposed by prom-client's registry exactly as its own
 * Histogram is (`_bucket` with `le`, `_sum`, `_count`), whose observe is a scan of the bounds and three
 * additions on a timer made once per label set. prom-client's Histogram hashes the labels on every
 * observe, a bound child's too: 0.53 µs a call, and /healthz under wrk ran 5% faster without it
 * (bench/RESULTS.md, issue 14).
 */
export class TimingHistogram<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  private readonly labelNames: readonly L[];
  private readonly bounds: readonly number[];
  private readonly timers = new Map<string, LabelSetTimer>();

  constructor(opts: TimingHistogramOptions<L>) {
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = opts.labelNames;
    this.bounds = [...opts.buckets].sort((a, b) => a - b);
    for (const registry of opts.registers) registry.registerMetric(this as unknown as Metric);
  }

  /** The timer of one label set (the same object for the same labels: keep it). */
  timer(labels: Readonly<Record<L, string>>): Timer {
    const key = this.labelNames.map((name) => labels[name]).join('\u0000');
    let timer = this.timers.get(key);
    if (!timer) {
      timer = new LabelSetTimer(Object.fromEntries(this.labelNames.map((name) => [name, labels[name]])), this.bounds);
      this.timers.set(key, timer);
    }
    return timer;
  }

  /**
   * What the registry writes out, shaped as prom-client's Histogram shapes it (each label set's
   * buckets, then its sum and count; `le` in `labels`, the label set in `sharedLabels`), so the text
   * is the same to the byte.
   */
  async getForPromString(): Promise<{ name: string; help: string; type: 'histogram'; values: ExportedValue[]; aggregator: 'sum' }> {
    const values: ExportedValue[] = [];
    for (const timer of this.timers.values()) {
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += timer.perBucket[i]!;
        values.push({ labels: { le: bound }, sharedLabels: timer.labels, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { le: '+Inf' }, sharedLabels: timer.labels, value: timer.count, metricName: `${this.name}_bucket` });
      values.push({ labels: {}, sharedLabels: timer.labels, value: timer.sum, metricName: `${this.name}_sum` });
      values.push({ labels: {}, sharedLabels: timer.labels, value: timer.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** The same as JSON (registry.getMetricsAsJSON()): each value's labels with its label set's. */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; values: Array<Omit<ExportedValue, 'sharedLabels'>>; aggregator: 'sum' }> {
    const data = await this.getForPromString();
    return { ...data, values: data.values.map(({ sharedLabels, labels, ...value }) => ({ ...value, labels: { ...labels, ...sharedLabels } })) };
  }

  /** prom-client's registry.resetMetrics(): every count back to zero (the timers handed out stay good). */
  reset(): void {
    for (const timer of this.timers.values()) {
      timer.perBucket.fill(0);
      timer.sum = 0;
      timer.count = 0;
    }
  }
}
