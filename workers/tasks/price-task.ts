/** Piscina thread task: prices orders (CPU only, no I/O). */
import { priceOrder, type PricingInput, type PricingResult } from '../../shared/orders/pricing.ts';

/** A batch in one message: the thread hop is paid once per batch, not once per order. (The default export: piscina preloads it when a thread starts.) */
export default function priceMany(inputs: readonly PricingInput[]): PricingResult[] {
  return inputs.map(priceOrder);
}
