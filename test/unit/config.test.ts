import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, SETTINGS } from '../../src/config.ts';

describe('parseConfig', () => {
  it('runs on embedded defaults with an empty environment', () => {
    const config = parseConfig({}, '/srv/dockyard');
    expect(config).toMatchObject({
      env: 'development',
      host: '127.0.0.1',
      port: 4000,
      dataDir: '/srv/dockyard/data',
      databaseUrl: null,
      redisUrl: null,
      dockerHost: 'unix:///var/run/docker.sock',
      graphiql: true,
      allowUnconfirmedLogin: false,
      allowedOrigins: ['http://localhost:4000'],
    });
    expect(config.builds.baseImages).toEqual(['busybox:latest', 'alpine:latest', 'debian:stable-slim', 'ubuntu:latest']);
    expect(config.rest.boatyardRegistry).toBeNull();
  });

  it('reads every documented setting', () => {
    const config = parseConfig({
      NODE_ENV: 'production',
      PORT: '8080',
      PUBLIC_URL: 'https://dockyard.example.test',
      DATABASE_URL: 'postgres://u:p@db:5432/dockyard',
      REDIS_URL: 'redis://cache:6379',
      DOCKER_HOST: 'tcp://engine:2375',
      ALLOWED_ORIGINS: 'https://a.example.test, https://b.example.test/',
      ALLOW_UNCONFIRMED_LOGIN: 'yes',
      SESSION_TTL_HOURS: '2',
      GRAPHQL_MAX_DEPTH: '7',
    });
    expect(config).toMatchObject({
      env: 'production',
      port: 8080,
      graphiql: false,
      databaseUrl: 'postgres://u:p@db:5432/dockyard',
      redisUrl: 'redis://cache:6379',
      dockerHost: 'tcp://engine:2375',
      allowedOrigins: ['https://dockyard.example.test', 'https://a.example.test', 'https://b.example.test'],
      allowUnconfirmedLogin: true,
      sessionTtlMs: 2 * 3600_000,
    });
    expect(config.graphqlLimits.maxDepth).toBe(7);
  });

  it.each([
    [{ DATABASE_URL: 'not a url' }, 'DATABASE_URL is not a valid URL (got "not a url"); expected postgres://…'],
    [{ DATABASE_URL: 'mysql://db/x' }, 'DATABASE_URL must use postgres: or postgresql: (got "mysql://db/x")'],
    [{ DATABASE_URL: 'postgres:///dockyard' }, 'DATABASE_URL has no host (got "postgres:///dockyard")'],
    [{ DATABASE_URL: 'postgres://user:secret@db:x/d' }, 'DATABASE_URL is not a valid URL (got "postgres://user:***@db:x/d"); expected postgres://…'],
    [{ REDIS_URL: 'http://cache' }, 'REDIS_URL must use redis: or rediss: (got "http://cache")'],
    [{ PORT: 'eighty' }, 'PORT must be a whole number (got "eighty")'],
    [{ PORT: '70000' }, 'PORT must be between 0 and 65535 (got 70000)'],
    [{ ALLOW_UNCONFIRMED_LOGIN: 'maybe' }, 'ALLOW_UNCONFIRMED_LOGIN must be true or false (got "maybe")'],
    [{ NODE_ENV: 'staging' }, 'NODE_ENV must be development, production or test (got "staging")'],
    [{ DOCKER_HOST: 'ssh://engine' }, 'DOCKER_HOST must look like unix:///var/run/docker.sock or tcp://host:2375 (got "ssh://engine")'],
    [{ PASSWORD_MIN_LENGTH: '4' }, 'PASSWORD_MIN_LENGTH must be between 8 and 128 (got 4)'],
    [{ BOATYARD_REGISTRY: 'docker.io' }, 'BOATYARD_REGISTRY must be a registry host with a dot or a port, or localhost, and not Docker Hub (got "docker.io")'],
    [{ BOATYARD_REGISTRY: 'registry' }, 'BOATYARD_REGISTRY must be a registry host with a dot or a port, or localhost, and not Docker Hub (got "registry")'],
    [{ IMAGE_NAMESPACE: 'my.org' }, 'IMAGE_NAMESPACE must be lower-case letters and digits, with _ or - between them (got "my.org")'],
    [{ BUILD_BASE_IMAGES: 'busybox,Alpine' }, 'BUILD_BASE_IMAGES: "Alpine" is not an image reference such as busybox:latest'],
  ])('refuses %j with one clear message', (env, message) => {
    expect(() => parseConfig(env)).toThrow(new ConfigError(message));
  });

  it('documents every variable it reads', () => {
    const source = parseConfig.toString();
    const read = [...source.matchAll(/read\(["']([A-Z_]+)["']\)/g)].map((m) => m[1]);
    expect(read.length).toBeGreaterThan(10);
    expect(SETTINGS.map((s) => s.name).sort()).toEqual([...new Set(read)].sort());
  });
});
