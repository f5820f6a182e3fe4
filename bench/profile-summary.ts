/**
 * Where a process's CPU time went, from a V8 CPU profile (`node --cpu-prof`, e.g. the files
 * BENCH_CPU_PROF_DIR makes the benches write): self time grouped by package (node_modules/<pkg>),
 * Node's own modules (node:...), this repository's files, and V8's buckets (GC, idle, program),
 * then the functions with the most self time.
 *
 *   scripts/node bench/profile-summary.ts <file.cpuprofile | directory of them> [top functions, default 25]
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** The bucket a frame's self time goes to. */
function categoryOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const inModules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (inModules?.[1]) return inModules[1];
  if (path.startsWith('node:')) return path.split('/').slice(0, 2).join('/');
  if (path.startsWith(ROOT)) return relative(ROOT, path).split('/').slice(0, 2).join('/');
  return path;
}

function summarise(file: string, top: number): void {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const totalUs = profile.endTime - profile.startTime;

  const categories = new Map<string, number>();
  const functions = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const category = categoryOf(url, functionName);
    categories.set(category, (categories.get(category) ?? 0) + us);
    const where = url ? `${category} ${functionName || '(anonymous)'}:${lineNumber + 1}` : functionName || '(anonymous)';
    functions.set(where, (functions.get(where) ?? 0) + us);
  }
  const idleUs = categories.get('(idle)') ?? 0;
  const busyUs = totalUs - idleUs;
  const pct = (us: number, of: number) => `${((100 * us) / Math.max(1, of)).toFixed(1)}%`.padStart(6);

  console.log(`\n${relative(process.cwd(), file)}: ${(totalUs / 1e6).toFixed(1)} s profiled, ${(busyUs / 1e6).toFixed(1)} s busy (${pct(busyUs, totalUs).trim()})`);
  console.log('  self time by package / module (% of busy time):');
  for (const [name, us] of [...categories].filter(([n]) => n !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, 20)) {
    console.log(`    ${pct(us, busyUs)}  ${name}`);
  }
  console.log(`  top ${top} functions by self time (% of busy time):`);
  for (const [name, us] of [...functions].filter(([n]) => n !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`    ${pct(us, busyUs)}  ${name}`);
  }
}

const target = process.argv[2];
const top = Number(process.argv[3] ?? 25);
if (!target) {
  console.error('usage: scripts/node bench/profile-summary.ts <file.cpuprofile | directory> [top functions]');
  process.exit(2);
}
const files = statSync(target).isDirectory()
  ? readdirSync(target, { recursive: true })
      .map(String)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => join(target, f))
      .sort()
  : [target];
if (files.length === 0) {
  console.error(`no .cpuprofile files under ${target}`);
  process.exit(1);
}
for (const file of files) summarise(file, Number.isInteger(top) && top > 0 ? top : 25);
