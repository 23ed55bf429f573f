// The REST compatibility router: Kabuto's and boatyard's wire formats, as thin adapters over the same
// services GraphQL uses. Handlers parse and format; every rule lives in the services.
//   kabuto*.ts    Kabuto's routes (under settings.kabutoPrefix), session cookie or API token
//   boatyard.ts   boatyard's /api/v1 routes, API token
//   body.ts       JSON, form and multipart bodies (files spooled to disk, never held in memory)
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import type { RestSettings } from '../../config.ts';
import type { Services } from '../context.ts';
import type { OriginPolicy } from '../origins.ts';
import type { BodyLimits } from './body.ts';
import { boatyardRouter } from './boatyard.ts';
import { kabutoRouter } from './kabuto.ts';

export interface RestRouterDeps {
  services: Services;
  policy: OriginPolicy;
  settings: RestSettings;
  /**
   * Where multipart files wait until the service takes them, and the most one file may have. The
   * services apply UPLOAD_MAX_MB again as they store a file; main.ts should pass that value and a
   * directory under DATA_DIR here (defaults: 100 MiB, the UPLOAD_MAX_MB default, and the OS temp directory).
   */
  uploads?: { maxFileBytes?: number; spoolDir?: string };
}

/** Files per request: more than any service takes (JOB_MAX_ATTACHMENTS, the builds' file cap), which say so themselves. */
const MAX_FILES = 101;
const MAX_FIELD_BYTES = 1024 * 1024;

/** Returns a handler that answers the requests it knows (true) and leaves the others (false). */
export function createRestRouter({ services, policy, settings, uploads }: RestRouterDeps): (req: IncomingMessage, res: ServerResponse, pathname: string) => Promise<boolean> {
  const limits: BodyLimits = {
    maxFieldBytes: MAX_FIELD_BYTES,
    maxFileBytes: uploads?.maxFileBytes ?? 100 * 1024 * 1024,
    maxFiles: MAX_FILES,
    spoolDir: uploads?.spoolDir ?? tmpdir(),
  };
  const routers = [
    boatyardRouter({ services, policy, settings, limits }),
    kabutoRouter({ services, policy, prefix: settings.kabutoPrefix, limits }),
  ];
  return async (req, res, pathname) => {
    for (const route of routers) if (await route(req, res, pathname)) return true;
    return false;
  };
}
