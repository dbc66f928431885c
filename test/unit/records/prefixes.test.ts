import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALL_PREFIXES, INDEXED } from '../../../src/records/prefixes.js';

const SRC = join(import.meta.dirname, '../../../src');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

describe('the table of side-record prefixes', () => {
  const prefixes = ALL_PREFIXES.map((e) => e.prefix);

  it('has each prefix once, each one lowercase word ended by "!"', () => {
    expect(new Set(prefixes).size).toBe(prefixes.length);
    for (const p of prefixes) expect(p).toMatch(/^[a-z0-9]+!$/);
  });

  it('has no prefix whose listing would return records of another', () => {
    for (const a of prefixes)
      for (const b of prefixes) if (a !== b) expect(b.startsWith(a), `${a} lists ${b}`).toBe(false);
  });

  it('names every prefix written in src/ (side records; the store keeps its own namespaces)', () => {
    const known = new Set(prefixes);
    const found = new Map<string, string>();
    for (const file of sources(SRC)) {
      if (file.includes('/storage/')) continue; // the store's own key spaces (a!, t!, r!, ...)
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/['`]([a-z0-9]+!)(?:['`]|\$\{)/g)) found.set(m[1]!, file);
      for (const m of text.matchAll(/new RecordIndex<[^>]+>\(\s*'([a-z0-9]+)'/g)) {
        expect(Object.keys(INDEXED), `${file}: RecordIndex ${m[1]}`).toContain(m[1]);
        found.set(`${m[1]!}!`, file);
      }
    }
    expect(found.size).toBeGreaterThan(15);
    for (const [p, file] of found) expect(known.has(p), `${file} writes ${p}`).toBe(true);
  });

  it('says who owns each prefix and what it holds', () => {
    for (const e of ALL_PREFIXES) {
      expect(e.owner).toMatch(/^src\//);
      expect(e.meaning.length).toBeGreaterThan(5);
    }
  });
});
