// The port through which the service talks to a container engine. The scheduler and the domain
// depend on this interface only; `docker/` is its adapter on the Docker Engine API.

export interface EngineInfo {
  name: string;
  version: string;
  apiVersion: string;
}

export interface ContainerEngine {
  /** Version details when the engine answers; throws when it does not. */
  info(): Promise<EngineInfo>;
}
