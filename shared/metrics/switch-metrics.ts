import { Gauge, type Registry } from 'prom-client';

/** The degradation switches as one process holds them (every process reads them: shared/switches/switches.ts). */
export function createSwitchMetrics(registry: Registry) {
  const registers = [registry];
  return {
    switchOn: new Gauge({
      name: 'courier_switch_on',
      help: 'Each degradation switch as this process last read it: 1 on (the feature runs), 0 off (it is shed)',
      labelNames: ['switch'] as const,
      registers,
    }),
    switchesReadAt: new Gauge({
      name: 'courier_switches_last_read_timestamp_seconds',
      help: 'When this process last read the switches from Redis (while Redis is away it keeps the values it read then)',
      registers,
    }),
  };
}

export type SwitchMetrics = ReturnType<typeof createSwitchMetrics>;
