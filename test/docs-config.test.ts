/**
 * The documentation cannot drift from the code: docs/configuration.md lists exactly the variables
 * loadConfig reads, with the code's defaults; docs/api.md's error table has every code of the
 * registry with its status; docs/operations.md names every CLI command; and a clone can follow
 * every link of the README and docs/ (relative links resolve to files and headings in the
 * repository; http(s) appears only as examples against this machine).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../shared/config.ts';
import { ERROR_CODES } from '../shared/errors/codes.ts';
import { ROOT } from './support/child-process.ts';

const DOC_FILES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

/** The rows of every markdown table whose header row is exactly `header`, as trimmed cells. */
function tableRows(markdown: string, header: string[]): string[][] {
  const rows: string[][] = [];
  let inTable = false;
  for (const line of markdown.split('\n')) {
    if (!line.startsWith('|')) {
      inTable = false;
      continue;
    }
    const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((cell) => cell.trim());
    if (cells.join('|') === header.join('|')) inTable = true;
    else if (inTable && !cells.every((cell) => /^-+$/.test(cell))) rows.push(cells);
  }
  return rows;
}

/** The environment variables loadConfig reads, whatever their value. */
function variablesLoadConfigReads(): string[] {
  const names = new Set<string>();
  const env = new Proxy({} as Record<string, string | undefined>, {
    get: (_target, name) => {
      if (typeof name === 'string') names.add(name);
      return undefined;
    },
  });
  loadConfig(env);
  return [...names].sort();
}

function documentedSettings(): { name: string; default: string }[] {
  return tableRows(read('docs/configuration.md'), ['variable', 'default', 'meaning']).map(([name, fallback]) => {
    const variable = /^`([A-Z][A-Z0-9_]*)`$/.exec(name!);
    if (!variable) throw new Error(`docs/configuration.md: a settings row names one variable in backticks, got ${name}`);
    return { name: variable[1]!, default: fallback! };
  });
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes. */
function slug(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function headings(markdown: string): string[] {
  // Lines in fenced code blocks are not headings (a shell comment starts with #).
  const outsideCode = markdown.replace(/^```[\s\S]*?^```/gm, '');
  return [...outsideCode.matchAll(/^#{1,6} (.+)$/gm)].map((match) => match[1]!.trim());
}

describe('docs/configuration.md', () => {
  it('lists exactly the variables loadConfig reads, each once', () => {
    const documented = documentedSettings().map((row) => row.name);
    expect(new Set(documented).size, 'a variable listed twice').toBe(documented.length);
    expect([...documented].sort()).toEqual(variablesLoadConfigReads());
  });

  it('gives each variable the default the code has: setting it to the documented default changes nothing', () => {
    const base = { NODE_ID: '7' };
    const defaults = loadConfig(base);
    const checked: string[] = [];
    for (const row of documentedSettings()) {
      const literal = /^`([^`]*)`$/.exec(row.default)?.[1] ?? (row.default === 'empty' ? '' : undefined);
      if (literal === undefined) continue; // e.g. NODE_ID's "random 0-63"
      expect(loadConfig({ ...base, [row.name]: literal }), `${row.name}=${literal}`).toEqual(defaults);
      checked.push(row.name);
    }
    expect(checked.length).toBe(documentedSettings().length - 1);
  });
});

describe('docs/api.md and docs/operations.md', () => {
  it('the error table has every code of the registry the API answers with, with its status', () => {
    const table = new Map<string, number>();
    for (const [status, codes] of tableRows(read('docs/api.md'), ['status', 'code', 'when'])) {
      for (const [, code] of codes!.matchAll(/`([A-Z_]+)`/g)) table.set(code!, Number(status));
    }
    const cliOnly = ['UNKNOWN_SWITCH', 'INVALID_SWITCH_VALUE'];
    const api = Object.entries(ERROR_CODES).filter(([code]) => !cliOnly.includes(code));
    expect(Object.fromEntries(table)).toEqual(Object.fromEntries(api.map(([code, entry]) => [code, entry.status])));
    for (const code of cliOnly) expect(read('docs/api.md')).toContain(`\`${code}\``);
  });

  it('the CLI table names every command workers/cli/ registers, and no other', () => {
    const dir = join(ROOT, 'workers', 'cli');
    const registered = readdirSync(dir)
      .flatMap((file) => [...readFileSync(join(dir, file), 'utf8').matchAll(/\.command\('([a-z:-]+)/g)].map((match) => match[1]!))
      .sort();
    const documented = tableRows(read('docs/operations.md'), ['command', 'does', 'see'])
      .map(([command]) => /^`([a-z:-]+)/.exec(command!)?.[1])
      .sort();
    expect(registered.length).toBeGreaterThan(0);
    expect(documented).toEqual(registered);
  });
});

describe('README.md and docs/', () => {
  it('the README stays a guide: at most 150 lines, the reference lives in docs/', () => {
    expect(read('README.md').split('\n').length).toBeLessThanOrEqual(150);
  });

  it('every relative link resolves to a file of the repository, and its #anchor to a heading there', () => {
    const broken: string[] = [];
    for (const file of DOC_FILES) {
      for (const [, target] of read(file).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^https?:/.test(target!)) continue; // the next test
        const [path, anchor] = target!.split('#') as [string, string | undefined];
        const resolved = path === '' ? join(ROOT, file) : resolve(dirname(join(ROOT, file)), path);
        if (!resolved.startsWith(`${ROOT}/`) || !existsSync(resolved)) {
          broken.push(`${file}: ${target} (no such file in the repository)`);
          continue;
        }
        if (anchor !== undefined && !headings(readFileSync(resolved, 'utf8')).map(slug).includes(anchor)) {
          broken.push(`${file}: ${target} (no heading #${anchor} in ${relative(ROOT, resolved)})`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it('links nowhere a clone cannot follow: http(s) only to this machine, as examples', () => {
    const outside: string[] = [];
    for (const file of DOC_FILES) {
      for (const [url, host] of read(file).matchAll(/https?:\/\/([^/:\s)`'"]+)/g)) {
        if (!['127.0.0.1', 'localhost', '<host>'].includes(host!)) outside.push(`${file}: ${url}`);
      }
    }
    expect(outside).toEqual([]);
  });

  it('no section twice: every heading is unique across the README and docs/', () => {
    const seen = new Map<string, string>();
    const twice: string[] = [];
    for (const file of DOC_FILES) {
      for (const heading of headings(read(file))) {
        const key = slug(heading);
        if (seen.has(key)) twice.push(`"${heading}" in ${seen.get(key)} and ${file}`);
        else seen.set(key, file);
      }
    }
    expect(twice).toEqual([]);
  });
});
