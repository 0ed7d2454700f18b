import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ConfigError, configSchema, loadConfig, maskRedisUrl } from '../src/config.js';

const names = Object.keys(configSchema.shape);
const envExample = readFileSync(new URL('../.env.example', import.meta.url), 'utf8');
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('configuration', () => {
  it('documents every variable in .env.example and in the README table', () => {
    for (const name of names) {
      expect(envExample, `.env.example lacks ${name}`).toMatch(new RegExp(`^#? ?${name}=`, 'm'));
      expect(readme, `README lacks ${name}`).toContain(`| \`${name}\` |`);
    }
  });

  it('.env.example as written starts the service with the defaults', () => {
    expect(loadConfig(parseEnv(envExample) as NodeJS.ProcessEnv)).toEqual(loadConfig({}));
  });

  it('names every bad variable at once, and never prints a secret value', () => {
    let error: unknown;
    try {
      loadConfig({
        PORT: 'eighty',
        WORKER_CONCURRENCY: '-1',
        REDIS_URL: 'http://user:secret@host',
        ADMIN_TOKEN: 'short',
        TYPE_LIMITS: 'sleep:speed=9',
      });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    for (const name of ['PORT', 'WORKER_CONCURRENCY', 'REDIS_URL', 'ADMIN_TOKEN', 'TYPE_LIMITS'])
      expect(message).toContain(name);
    expect(message).not.toContain('secret');
    expect(message).toContain('"eighty"');
  });

  it('parses WORKER_KEYS: name, optional type scope, keys by their hash; never echoes a key', () => {
    const digest = 'a'.repeat(64);
    expect(
      loadConfig({ WORKER_KEYS: `w0rker-key-0123456789:fleet, sha256:${digest}:gpu-box:resize|thumb.v2` }).WORKER_KEYS,
    ).toEqual([
      { key: 'w0rker-key-0123456789', name: 'fleet' },
      { sha256: digest, name: 'gpu-box', types: ['resize', 'thumb.v2'] },
    ]);
    for (const bad of [
      'short:fleet',
      'w0rker-key-0123456789',
      'w0rker-key-0123456789:fleet:Bad|type',
      'w0rker-key-0123456789:fleet:',
    ]) {
      expect(() => loadConfig({ WORKER_KEYS: bad }), bad).toThrow(/WORKER_KEYS: entry 1/);
      try {
        loadConfig({ WORKER_KEYS: bad });
      } catch (error) {
        expect((error as Error).message).not.toContain('0123456789');
      }
    }
    expect(loadConfig({})).toMatchObject({ REMOTE_MAX_WAIT_S: 25, REMOTE_MAX_CLAIM: 100 });
    expect(() => loadConfig({ REMOTE_MAX_WAIT_S: '61' })).toThrow(/REMOTE_MAX_WAIT_S/);
  });

  it('parses lists and limits', () => {
    const config = loadConfig({
      JOB_TYPES: 'echo, sleep ,http',
      TYPE_LIMITS: 'sleep:max_concurrency=5:rate=20/1;echo:rate=100/60',
      CORS_ORIGINS: 'https://a.example, https://b.example:8443',
    });
    expect(config.JOB_TYPES).toEqual(['echo', 'sleep', 'http']);
    expect(config.TYPE_LIMITS).toEqual({
      sleep: { maxConcurrency: 5, rate: { max: 20, perMs: 1000 } },
      echo: { rate: { max: 100, perMs: 60_000 } },
    });
    expect(config.CORS_ORIGINS).toEqual(['https://a.example', 'https://b.example:8443']);
    expect(loadConfig({ CORS_ORIGINS: '*' }).CORS_ORIGINS).toBe('*');
    expect(() => loadConfig({ CORS_ORIGINS: 'https://a.example/path' })).toThrow(/CORS_ORIGINS/);
  });

  it('parses key_concurrency and fair_by in TYPE_LIMITS, and names TYPE_LIMITS for a bad one', () => {
    expect(loadConfig({ TYPE_LIMITS: 'docs:key_concurrency=1:fair_by=key;sleep:fair_by=tenant' }).TYPE_LIMITS).toEqual({
      docs: { keyConcurrency: 1, fairBy: 'key' },
      sleep: { fairBy: 'tenant' },
    });
    for (const bad of [
      'docs:key_concurrency=0',
      'docs:key_concurrency=1.5',
      'docs:key_concurrency=',
      'docs:fair_by=job',
    ]) {
      let error: unknown;
      try {
        loadConfig({ TYPE_LIMITS: bad });
      } catch (caught) {
        error = caught;
      }
      expect(error, bad).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(/TYPE_LIMITS: .*key_concurrency=N .*fair_by=tenant\|key/);
    }
  });

  it('parses TENANT_WEIGHTS as tenant:weight pairs, and names TENANT_WEIGHTS for a bad one', () => {
    expect(loadConfig({}).TENANT_WEIGHTS).toEqual({});
    expect(loadConfig({ TENANT_WEIGHTS: 'acme:3, globex.eu:1000,small_co:1' }).TENANT_WEIGHTS).toEqual({
      acme: 3,
      'globex.eu': 1000,
      small_co: 1,
    });
    for (const bad of [
      'acme',
      'acme:0',
      'acme:1001',
      'acme:2.5',
      'acme:-1',
      'ac me:2',
      ':2',
      `${'a'.repeat(65)}:2`,
      'acme:2,acme:3',
    ]) {
      expect(() => loadConfig({ TENANT_WEIGHTS: bad }), bad).toThrow(/TENANT_WEIGHTS: /);
    }
  });

  it('parses ADMIN_KEYS as key:role pairs, and rejects a bad role or pair naming ADMIN_KEYS without echoing a key', () => {
    const hex = 'AB'.repeat(32);
    expect(
      loadConfig({ ADMIN_KEYS: `viewer-key-0123456789:viewer, sha256:${hex}:operator,with:colon-key-0123456:admin` })
        .ADMIN_KEYS,
    ).toEqual([
      { key: 'viewer-key-0123456789', role: 'viewer' },
      { sha256: hex.toLowerCase(), role: 'operator' },
      { key: 'with:colon-key-0123456', role: 'admin' },
    ]);
    for (const bad of [
      'secret-key-0123456789:root',
      'secret-key-0123456789',
      'secret-key-0123456789:Admin',
      'short:admin',
      'sha256:abc:viewer,',
      ':viewer',
    ]) {
      let error: unknown;
      try {
        loadConfig({ ADMIN_KEYS: bad });
      } catch (caught) {
        error = caught;
      }
      expect(error, bad).toBeInstanceOf(ConfigError);
      const message = (error as Error).message;
      expect(message).toMatch(/ADMIN_KEYS: entry 1: /);
      expect(message).not.toContain('secret-key');
    }
    expect(() => loadConfig({ ADMIN_KEYS: 'good-key-0123456789:viewer,good-key-0123456789:superuser' })).toThrow(
      /ADMIN_KEYS: entry 2: use key:role \(role: viewer, operator or admin\)/,
    );
    // API_KEYS shares the parser and keeps its shape.
    expect(loadConfig({ API_KEYS: `k3y-for-acme-0123456:acme,sha256:${hex}:globex` }).API_KEYS).toEqual([
      { key: 'k3y-for-acme-0123456', tenant: 'acme' },
      { sha256: hex.toLowerCase(), tenant: 'globex' },
    ]);
    expect(() => loadConfig({ API_KEYS: 'k3y-for-acme-0123456:ac me' })).toThrow(/API_KEYS: entry 1: use key:tenant/);
  });

  it('takes one or two whsec_ webhook secrets, and names WEBHOOK_SECRET without echoing it when one is bad', () => {
    const good = `whsec_${Buffer.alloc(24, 7).toString('base64')}`;
    const other = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;
    expect(loadConfig({ WEBHOOK_SECRET: good }).WEBHOOK_SECRET).toEqual([good]);
    expect(loadConfig({ WEBHOOK_SECRET: `${good}, ${other}` }).WEBHOOK_SECRET).toEqual([good, other]);
    expect(loadConfig({ WEBHOOK_RETRY_BASE_S: '0.5' }).WEBHOOK_RETRY_BASE_S).toBe(0.5);
    for (const bad of [
      'plain-secret-without-prefix',
      'whsec_c2hvcnQ=',
      `${good},${good},${other}`,
      'whsec_not base64!',
    ]) {
      expect(() => loadConfig({ WEBHOOK_SECRET: bad })).toThrow(/WEBHOOK_SECRET/);
      try {
        loadConfig({ WEBHOOK_SECRET: bad });
      } catch (error) {
        expect((error as Error).message).not.toContain(bad);
      }
    }
    expect(() => loadConfig({ WEBHOOK_RETRY_BASE_S: '0' })).toThrow(/WEBHOOK_RETRY_BASE_S/);
  });

  it('masks the password of a Redis URL for the logs', () => {
    expect(maskRedisUrl('redis://default:s3cret@redis.internal:6379/0')).toBe(
      'redis://default:***@redis.internal:6379/0',
    );
    expect(maskRedisUrl('rediss://:s3cret@host:6380')).not.toContain('s3cret');
  });
});
