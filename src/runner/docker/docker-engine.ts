// The ContainerEngine adapter on the Docker Engine API (dockerode).
import Docker from 'dockerode';
import type { ContainerEngine, EngineInfo } from '../engine.ts';
import { withTimeout } from '../../util/with-timeout.ts';

/** Turns DOCKER_HOST (`unix:///path` or `tcp://host:port`) into dockerode options. */
export function dockerOptions(dockerHost: string): Docker.DockerOptions {
  if (dockerHost.startsWith('unix://')) return { socketPath: dockerHost.slice('unix://'.length) };
  const { hostname, port } = new URL(dockerHost);
  return { host: hostname, port: Number(port), protocol: 'http' };
}

export class DockerEngine implements ContainerEngine {
  readonly docker: Docker;

  constructor(dockerHost: string) {
    this.docker = new Docker(dockerOptions(dockerHost));
  }

  async info(): Promise<EngineInfo> {
    const version = await withTimeout(this.docker.version(), 3000, 'Docker engine version request');
    return { name: 'docker', version: version.Version, apiVersion: version.ApiVersion };
  }
}
