import type { Db } from '../../shared/db.ts';

/** A bench zone's merchant (one per zone, at the zone's centre). */
export interface BenchMerchant {
  readonly id: string;
  readonly zoneId: string;
  readonly lat: number;
  readonly lng: number;
}

/** Zones spread over Shanghai, ~3 km apart (bench-01, bench-02, ...), with their merchants 9001, 9002, ... */
export function benchMerchants(zones: number): BenchMerchant[] {
  return Array.from({ length: zones }, (_, z) => {
    const zoneId = `bench-${String(z + 1).padStart(2, '0')}`;
    return { id: String(9001 + z), zoneId, lat: +(31.15 + 0.03 * (z % 5)).toFixed(6), lng: +(121.4 + 0.03 * Math.floor(z / 5)).toFixed(6) };
  });
}

export async function insertMerchants(db: Db, merchants: readonly BenchMerchant[]): Promise<void> {
  await db('merchants').insert(
    merchants.map((m) => ({ id: m.id, name: `Bench Kitchen ${m.zoneId}`, zone_id: m.zoneId, lat: m.lat, lng: m.lng, address: `1 Bench Road, ${m.zoneId}` })),
  );
}

/**
 * `perZone` available riders of `capacity` in each merchant's zone, within a few hundred metres of
 * it (well inside DISPATCH_RADIUS_M); resolves with how many were inserted.
 */
export async function insertRiders(db: Db, merchants: readonly BenchMerchant[], perZone: number, capacity: number): Promise<number> {
  const riders = merchants.flatMap((m, z) =>
    Array.from({ length: perZone }, (_, i) => ({
      id: String(900_000 + z * 1000 + i),
      name: `Bench rider ${z + 1}-${i + 1}`,
      zone_id: m.zoneId,
      status: 'AVAILABLE',
      lat: +(m.lat + 0.0005 * ((i % 7) - 3)).toFixed(6),
      lng: +(m.lng + 0.0005 * ((Math.floor(i / 7) % 7) - 3)).toFixed(6),
      capacity,
    })),
  );
  for (let i = 0; i < riders.length; i += 500) await db('riders').insert(riders.slice(i, i + 500));
  return riders.length;
}

/** The request bodies of POST /v1/orders: one per bench merchant, a load cycling over them. */
export function orderBodies(merchants: readonly BenchMerchant[]): string[] {
  return merchants.map((m) =>
    JSON.stringify({
      merchantId: m.id,
      dropoff: { lat: +(m.lat + 0.01).toFixed(6), lng: +(m.lng + 0.01).toFixed(6), address: '88 Century Ave', phone: '+8613800000000' },
      items: [{ sku: 'NOODLE-01', name: 'Beef noodles', qty: 2, priceCents: 1800 }],
      note: 'ring twice',
    }),
  );
}
