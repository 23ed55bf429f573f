// The REST compatibility router: Kabuto's and boatyard's wire formats, as thin adapters over the same
// services GraphQL uses. Handlers parse and format; every rule lives in the services.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RestSettings } from '../../config.ts';
import type { Services } from '../context.ts';
import type { OriginPolicy } from '../origins.ts';

export interface RestRouterDeps {
  services: Services;
  policy: OriginPolicy;
  settings: RestSettings;
}

/** Returns a handler that answers the requests it knows (true) and leaves the others (false). */
export function createRestRouter(_deps: RestRouterDeps): (req: IncomingMessage, res: ServerResponse, pathname: string) => Promise<boolean> {
  return async () => false;
}
