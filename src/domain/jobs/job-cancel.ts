// Asking the instance running a job to stop it: the one place that flags a running job and publishes
// `jobCancelRequested` (a job's own cancel and its pipeline's both come here).
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { EventBus } from '../../events/pubsub.ts';
import { Job } from './job.entity.ts';

/** Flags the job if it is RUNNING and tells every instance; false when it was not running. */
export async function requestJobCancel(em: SqlEntityManager, bus: EventBus, jobId: number, now: Date): Promise<boolean> {
  if ((await em.nativeUpdate(Job, { id: jobId, state: 'RUNNING' }, { cancelRequestedAt: now })) !== 1) return false;
  bus.publish('jobCancelRequested', { jobId: String(jobId) });
  return true;
}
