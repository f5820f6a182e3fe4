/** A deliberately slow pricing thread task: it holds its thread (not the event loop) for SLOW_TASK_MS per call. */
import { priceOrder, type PricingInput, type PricingResult } from '../../shared/orders/pricing.ts';

function burn(): void {
  const until = Date.now() + Number(process.env.SLOW_TASK_MS ?? 3000);
  while (Date.now() < until) {
    // burn CPU in the thread, as a heavy computation would
  }
}

export default function priceMany(inputs: readonly PricingInput[]): PricingResult[] {
  burn();
  return inputs.map(priceOrder);
}
