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
      loadConfig({ PORT: 'eighty', WORKER_CONCURRENCY: '-1', REDIS_URL: 'http://user:secret@host', ADMIN_TOKEN: 'short', TYPE_LIMITS: 'sleep:speed=9' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    for (const name of ['PORT', 'WORKER_CONCURRENCY', 'REDIS_URL', 'ADMIN_TOKEN', 'TYPE_LIMITS']) expect(message).toContain(name);
    expect(message).not.toContain('secret');
    expect(message).toContain('"eighty"');
  });

  it('parses lists and limits', () => {
    const config = loadConfig({ JOB_TYPES: 'echo, sleep ,http', TYPE_LIMITS: 'sleep:max_concurrency=5:rate=20/1;echo:rate=100/60', CORS_ORIGINS: 'https://a.example, https://b.example:8443' });
    expect(config.JOB_TYPES).toEqual(['echo', 'sleep', 'http']);
    expect(config.TYPE_LIMITS).toEqual({ sleep: { maxConcurrency: 5, rate: { max: 20, perS: 1 } }, echo: { rate: { max: 100, perS: 60 } } });
    expect(config.CORS_ORIGINS).toEqual(['https://a.example', 'https://b.example:8443']);
    expect(loadConfig({ CORS_ORIGINS: '*' }).CORS_ORIGINS).toBe('*');
    expect(() => loadConfig({ CORS_ORIGINS: 'https://a.example/path' })).toThrow(/CORS_ORIGINS/);
  });

  it('masks the password of a Redis URL for the logs', () => {
    expect(maskRedisUrl('redis://default:s3cret@redis.internal:6379/0')).toBe('redis://default:***@redis.internal:6379/0');
    expect(maskRedisUrl('rediss://:s3cret@host:6380')).not.toContain('s3cret');
  });
});
