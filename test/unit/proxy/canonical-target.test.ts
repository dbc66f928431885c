import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalTarget, parsedTarget } from '../../../src/proxy/canonical-target.js';

describe('canonicalTarget', () => {
  it.each([
    ['/v1/models', '/v1/models', '/v1/models'],
    ['/', '/', '/'],
    ['/v1/chat/completions?x=1&y=a,b', '/v1/chat/completions', '/v1/chat/completions?x=1&y=a,b'],
    ['/a/b.c/d-e_f~g/', '/a/b.c/d-e_f~g/', '/a/b.c/d-e_f~g/'],
    ['/files/%41', '/files/%41', '/files/%41'],
  ])('keeps the canonical target %s', (raw, path, pathAndSearch) => {
    expect(canonicalTarget(raw)).toEqual({ path, pathAndSearch });
  });

  it.each([
    '//evil.example/x',
    'http://evil.example/x',
    '/a/../b',
    '/a/./b',
    '/..',
    '/a/%2e%2e/b',
    '/a%2fb',
    '/a%5Cb',
    '/a\\b',
    '/a b',
    '/a?q="x"',
    "/a?q='x'",
    '/a?<script>',
    '/é',
    '*',
  ])('refuses %s', (raw) => {
    expect(canonicalTarget(raw)).toBeUndefined();
  });

  it('agrees with the URL parser on every target (the quick patterns are only a shortcut)', () => {
    const chars = '/.?&=%~-_abAZ0925efcEFC#\\\'"<> é:@!$*+,;[]{}|^`';
    const raw = fc
      .array(fc.constantFrom(...chars.split('')), { maxLength: 24 })
      .map((cs) => `/${cs.join('')}`);
    fc.assert(
      fc.property(raw, (r) => {
        expect(canonicalTarget(r)).toEqual(parsedTarget(r));
      }),
      { numRuns: 20_000 },
    );
  });
});
