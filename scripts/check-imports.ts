/**
 * The structure guard `npm test` runs before the tests (STYLE.md habit 10, BullMQ's
 * `madge --circular`), with TypeScript's own parser rather than another dependency:
 *   1. no import cycle among our files: a cycle makes the load order decide which module sees
 *      the other's bindings still uninitialised (a TDZ error, or undefined, at start);
 *   2. dependencies point one way, workers -> jobs -> shared (ARCHITECTURE.md): shared never
 *      imports jobs or workers, and jobs never import workers.
 * Only imports that exist at run time count: `import type` / `export type` are erased by the
 * type stripping, so they can neither load a module nor close a cycle. (`import { type A }` is
 * kept under verbatimModuleSyntax, as an import of nothing that still loads the module, so it
 * counts.) A dynamic import() counts for the direction but not for cycles: it loads later, once
 * both modules are initialised.
 *
 *   scripts/node scripts/check-imports.ts     exit 0 with one summary line, 1 with each finding
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const FOLDERS = ['workers', 'jobs', 'shared', 'migrations', 'scripts', 'bench', 'test'];
/** The layers of ARCHITECTURE.md, lowest first: a file may import its own layer or a lower one. */
const LAYERS = ['shared', 'jobs', 'workers'];

interface Imports {
  /** Loaded when the importing module loads (static, not type-only). */
  readonly static: string[];
  readonly dynamic: string[];
}

function sourceFiles(): string[] {
  return FOLDERS.flatMap((folder) =>
    readdirSync(join(ROOT, folder), { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts') && !file.split('/').includes('node_modules'))
      .map((file) => join(folder, file)),
  );
}

/** The relative imports of one file that exist at run time, as repository paths. */
function importsOf(file: string): Imports {
  const source = ts.createSourceFile(file, readFileSync(join(ROOT, file), 'utf8'), ts.ScriptTarget.Latest, true);
  const found: Imports = { static: [], dynamic: [] };
  const add = (list: string[], specifier: ts.Expression | undefined) => {
    if (specifier && ts.isStringLiteral(specifier) && specifier.text.startsWith('.')) {
      list.push(relative(ROOT, resolve(ROOT, dirname(file), specifier.text)));
    }
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && !node.importClause?.isTypeOnly) add(found.static, node.moduleSpecifier);
    else if (ts.isExportDeclaration(node) && !node.isTypeOnly) add(found.static, node.moduleSpecifier);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(found.dynamic, node.arguments[0]);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** Strongly connected components of more than one file, or a file importing itself (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const connect = (file: string) => {
    index.set(file, index.size);
    low.set(file, index.get(file)!);
    stack.push(file);
    onStack.add(file);
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue;
      if (!index.has(next)) {
        connect(next);
        low.set(file, Math.min(low.get(file)!, low.get(next)!));
      } else if (onStack.has(next)) low.set(file, Math.min(low.get(file)!, index.get(next)!));
    }
    if (low.get(file) !== index.get(file)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== file);
    if (component.length > 1 || graph.get(file)!.includes(file)) found.push(component.reverse());
  };
  for (const file of graph.keys()) if (!index.has(file)) connect(file);
  return found;
}

/** One import path around a cycle's files, e.g. a.ts -> b.ts -> a.ts. */
function cyclePath(component: readonly string[], graph: Map<string, string[]>): string {
  const members = new Set(component);
  const start = component[0]!;
  const path = [start];
  const seen = new Set<string>();
  let at = start;
  while (!seen.has(at)) {
    seen.add(at);
    at = graph.get(at)!.find((next) => members.has(next) && (next === start || !seen.has(next))) ?? start;
    path.push(at);
    if (at === start) break;
  }
  return path.join(' -> ');
}

function layerOf(file: string): number {
  return LAYERS.indexOf(file.split('/')[0]!);
}

const files = sourceFiles();
const graph = new Map<string, string[]>();
const findings: string[] = [];
for (const file of files) {
  const { static: loaded, dynamic } = importsOf(file);
  graph.set(file, loaded);
  const from = layerOf(file);
  if (from < 0) continue;
  for (const target of [...loaded, ...dynamic]) {
    const to = layerOf(target);
    if (to > from) findings.push(`direction: ${file} imports ${target} (dependencies point workers -> jobs -> shared)`);
  }
}
for (const component of cycles(graph)) findings.push(`cycle: ${cyclePath(component, graph)}`);

if (findings.length > 0) {
  for (const finding of findings) console.error(`check-imports: ${finding}`);
  console.error(`check-imports: ${findings.length} problem(s) in the imports of ${files.length} files`);
  process.exit(1);
}
console.log(`check-imports: ${files.length} files, no import cycle, dependencies point workers -> jobs -> shared`);
