import type { Db } from '../db.ts';

/** Three zones of Shanghai, each with merchants and riders, for a newcomer's first orders. */
export const DEMO_ZONES = [
  { id: 'sh-lujiazui', lat: 31.2397, lng: 121.4998 },
  { id: 'sh-jingan', lat: 31.2286, lng: 121.4476 },
  { id: 'sh-xuhui', lat: 31.1884, lng: 121.4365 },
] as const;

const MERCHANTS_PER_ZONE = 4;
const RIDERS_PER_ZONE = 10;

/** Small fixed ids, so the README and a newcomer's curl can name merchant 1001. */
export function demoMerchants() {
  return DEMO_ZONES.flatMap((zone, z) =>
    Array.from({ length: MERCHANTS_PER_ZONE }, (_, i) => ({
      id: String(1001 + z * 100 + i),
      name: `${['Noodle', 'Dumpling', 'Tea', 'Bakery'][i % 4]} House ${zone.id}`,
      zone_id: zone.id,
      lat: +(zone.lat + 0.002 * i).toFixed(6),
      lng: +(zone.lng - 0.002 * i).toFixed(6),
      address: `${10 + i} Demo Road, ${zone.id}`,
    })),
  );
}

export function demoRiders() {
  return DEMO_ZONES.flatMap((zone, z) =>
    Array.from({ length: RIDERS_PER_ZONE }, (_, i) => ({
      id: String(2001 + z * 100 + i),
      name: `Rider ${z + 1}-${i + 1}`,
      zone_id: zone.id,
      status: 'AVAILABLE',
      lat: +(zone.lat + 0.001 * ((i % 5) - 2)).toFixed(6),
      lng: +(zone.lng + 0.001 * (Math.floor(i / 5) - 1)).toFixed(6),
      capacity: 3,
    })),
  );
}

/** Inserts what is missing and leaves existing rows as they are (setup runs it every time). */
export async function seedDemoData(db: Db): Promise<{ merchants: number; riders: number }> {
  const merchants = demoMerchants();
  const riders = demoRiders();
  await db('merchants').insert(merchants).onConflict('id').ignore();
  await db('riders').insert(riders).onConflict('id').ignore();
  return { merchants: merchants.length, riders: riders.length };
}
