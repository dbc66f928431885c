import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp, type CoulombApp } from '../../../src/http/app.js';
import { ConsoleSessions } from '../../../src/http/console-session.js';
import { OperatorAuth } from '../../../src/http/operator-auth.js';
import { fakeBackend } from '../../support/fake-backend.js';

const apps: CoulombApp[] = [];
afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
});

async function app(consoleDir: string): Promise<CoulombApp> {
  const a = await buildApp({
    backend: fakeBackend({ state: 'connected' }),
    operatorAuth: OperatorAuth.fromKey(OperatorAuth.generateKey()),
    consoleSessions: new ConsoleSessions(),
    consoleDir,
  });
  apps.push(a);
  return a;
}

describe('console pages', () => {
  const dir = mkdtempSync(join(tmpdir(), 'coulomb-console-'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><div id="app"></div>');
  writeFileSync(join(dir, 'app.js'), 'export const app = 1;');
  writeFileSync(join(dir, 'app.css'), 'body{}');
  writeFileSync(join(dir, 'secret.txt'), 'not served');

  it('serves the page and its two assets without a session, as they are, and nothing else', async () => {
    const a = await app(dir);
    const page = await a.inject({ url: '/console' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect(page.body).toBe('<!doctype html><div id="app"></div>');
    const js = await a.inject({ url: '/console/assets/app.js' });
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.body).toBe('export const app = 1;');
    expect((await a.inject({ url: '/console/assets/app.css' })).body).toBe('body{}');
    for (const url of [
      '/console/assets/secret.txt',
      '/console/assets/..%2Fsecret.txt',
      '/console/secret.txt',
    ]) {
      const res = await a.inject({ url });
      expect(res.statusCode).toBe(404);
      expect(res.body).not.toContain('not served');
    }
    // The data behind the pages still needs the session (or the operator key).
    expect((await a.inject({ url: '/v1/node' })).statusCode).toBe(401);
  });

  it('says how to build the console when it is not built', async () => {
    const a = await app(mkdtempSync(join(tmpdir(), 'coulomb-console-empty-')));
    const res = await a.inject({ url: '/console/' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({
      error: { code: 'CONSOLE_NOT_BUILT', message: expect.stringContaining('npm run build') },
    });
  });
});
