// A real Docker registry (Debian's docker-registry, distribution 2.8) on loopback, with one
// htpasswd login, for push tests. The Docker engine treats 127.0.0.1 as an insecure-ok registry.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { onTestFinished } from 'vitest';
import { freePort } from './ports.ts';

export interface TestRegistry {
  /** `127.0.0.1:<port>` */
  address: string;
  username: string;
  password: string;
  /** The tags the registry holds for a repository (authenticated). */
  tags(repository: string): Promise<string[]>;
}

export async function startRegistry(username = 'pusher', password = 'registry-secret-1'): Promise<TestRegistry> {
  const dir = mkdtempSync(path.join(tmpdir(), 'dockyard-registry-'));
  const port = await freePort();
  // bcrypt, as distribution's htpasswd wants it
  const hash = execFileSync('python3', ['-c', 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))', password], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  }).trim();
  writeFileSync(path.join(dir, 'htpasswd'), `${username}:${hash}\n`);
  writeFileSync(
    path.join(dir, 'config.yml'),
    [
      'version: 0.1',
      'log: { level: error }',
      `storage: { filesystem: { rootdirectory: ${dir}/data } }`,
      `http: { addr: "127.0.0.1:${port}", secret: test-secret }`,
      `auth: { htpasswd: { realm: dockyard-test, path: ${dir}/htpasswd } }`,
    ].join('\n'),
  );
  const child = spawn('docker-registry', ['serve', path.join(dir, 'config.yml')], { stdio: 'ignore' });
  // Called inside a test: stopped when that test ends.
  onTestFinished(() => {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  });
  const address = `127.0.0.1:${port}`;
  const auth = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  for (let attempt = 0; ; attempt++) {
    try {
      if ((await fetch(`http://${address}/v2/`, { headers: { authorization: auth } })).ok) break;
    } catch {
      if (attempt > 100) throw new Error('the test registry did not start');
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    address,
    username,
    password,
    tags: async (repository) => {
      const response = await fetch(`http://${address}/v2/${repository}/tags/list`, { headers: { authorization: auth } });
      if (response.status === 404) return [];
      return ((await response.json()) as { tags: string[] | null }).tags ?? [];
    },
  };
}
