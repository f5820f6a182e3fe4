/** Piscina thread task: prices one order (CPU only, no I/O). */
import { priceOrder, type PricingInput, type PricingResult } from '../../shared/orders/pricing.ts';

export default function priceTask(input: PricingInput): PricingResult {
  return priceOrder(input);
}
