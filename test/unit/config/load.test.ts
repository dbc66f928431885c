import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULTS, envOverrides, loadConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/domain/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'coulomb-config-'));

describe('loadConfig', () => {
  it('uses the embedded regtest defaults when nothing is configured', () => {
    expect(loadConfig()).toEqual(DEFAULTS);
  });

  it('layers file < env < flags', () => {
    const file = join(dir, 'c.yaml');
    writeFileSync(file, 'http:\n  port: 9000\n  host: 0.0.0.0\nlogLevel: debug\n');
    const env = envOverrides({ COULOMB_HTTP_PORT: '9001', COULOMB_LOG_LEVEL: 'warn' });
    const config = loadConfig({ file, env, flags: { 'http.port': '9002' } });
    expect(config.http).toEqual({ host: '0.0.0.0', port: 9002 });
    expect(config.logLevel).toBe('warn');
  });

  it('reads an LND target from env', () => {
    const env = envOverrides({
      COULOMB_LND_SOCKET: 'node:10009',
      COULOMB_LND_CERT: '/x/tls.cert',
      COULOMB_LND_MACAROON: '/x/admin.macaroon',
    });
    expect(loadConfig({ env }).lnd).toEqual({
      socket: 'node:10009',
      cert: '/x/tls.cert',
      macaroon: '/x/admin.macaroon',
    });
  });

  it('reads the outbound allowlist from a file or from env as a comma-separated list', () => {
    const file = join(dir, 'o.yaml');
    writeFileSync(file, 'outbound:\n  allow: [verifier.internal, 10.8.0.0/16]\n');
    expect(loadConfig({ file }).outbound).toEqual({ allow: ['verifier.internal', '10.8.0.0/16'] });
    const env = envOverrides({ COULOMB_OUTBOUND_ALLOW: ' 10.0.0.5, fd00::/8 ,' });
    expect(loadConfig({ env }).outbound).toEqual({ allow: ['10.0.0.5', 'fd00::/8'] });
  });

  it('reads an external MQTT broker and its shared subscription group, and refuses a group MQTT cannot carry', () => {
    const env = envOverrides({
      COULOMB_MQTT_URL: 'mqtt://broker:1883',
      COULOMB_MQTT_SHARE_GROUP: 'coulomb-eu',
    });
    expect(loadConfig({ env }).mqtt).toMatchObject({ url: 'mqtt://broker:1883', shareGroup: 'coulomb-eu' });
    for (const bad of ['a/b', 'a+', '#', ''])
      expect(() => loadConfig({ flags: { 'mqtt.shareGroup': bad } })).toThrow(/mqtt\/shareGroup/);
  });

  it.each([
    [{ 'http.port': '70000' }, /http\/port/],
    [{ 'http.port': 'abc' }, /http\/port/],
    [{ logLevel: 'loud' }, /logLevel/],
    [{ 'lnd.socket': 'localhost' }, /lnd/],
  ])('rejects %j with a message naming the field', (flags, message) => {
    expect(() => loadConfig({ flags })).toThrow(ConfigError);
    expect(() => loadConfig({ flags })).toThrow(message);
  });

  it('rejects unknown keys and both lnd and polar at once', () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ htp: {} }));
    expect(() => loadConfig({ file })).toThrow(/invalid configuration/);
    const flags = {
      'lnd.socket': 'a:1',
      'lnd.cert': 'c',
      'lnd.macaroon': 'm',
      'polar.network': 'n',
      'polar.node': 'alice',
    };
    expect(() => loadConfig({ flags })).toThrow(/either lnd .* or polar/);
  });

  it('reports unreadable and malformed files clearly', () => {
    expect(() => loadConfig({ file: join(dir, 'missing.yaml') })).toThrow(/cannot read config file/);
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{');
    expect(() => loadConfig({ file })).toThrow(/not valid JSON/);
  });
});
