/** Piscina thread task: solves one dispatch batch's assignment problem (Hungarian algorithm). */
import munkres from 'munkres';
import type { MatchInput, MatchOutput } from '../../shared/orders/dispatch-matching.ts';

export default function matchTask(input: MatchInput): MatchOutput {
  if (input.costs.length === 0 || (input.costs[0]?.length ?? 0) === 0) return { pairs: [] };
  const pairs = munkres(input.costs) as [number, number][];
  return { pairs: pairs.filter(([order, slot]) => Number.isFinite(input.costs[order]![slot]!)) };
}
