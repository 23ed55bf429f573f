// Kabuto's pipelines, jobs, execution logs and results. The pipelines and jobs services do the work;
// these handlers read Kabuto's fields, call them, and answer in Kabuto's shapes and texts. A job is
// only ever found through its own pipeline, and another user's objects read like missing ones.
import { sendResultsZip } from '../downloads.ts';
import type { Job } from '../../domain/jobs/job.entity.ts';
import type { Pipeline } from '../../domain/pipelines/pipeline.entity.ts';
import type { User } from '../../domain/users/user.entity.ts';
import { DomainError } from '../../domain/errors.ts';
import type { Services } from '../context.ts';
import { incomingFile } from './body.ts';
import { byId, jobJson, jobState, logLineJson, pipelineJson } from './kabuto-format.ts';
import { idOf, KabutoError, ok, orMissing, SENT, type KabutoCall, type KabutoReply } from './kabuto-call.ts';

const PIPELINE_NO_RIGHTS = "You either don't have the rights to update this image, or it does not exist"; // sic: Kabuto says "image"
const PIPELINE_DELETE_NO_RIGHTS = "You either don't have the rights to update this pipeline, or it does not exist";
const JOB_NO_RIGHTS = "You either don't have the rights to update this job, or it does not exist";
const PAGE = 500;
const LOG_PAGE = 5000;

export async function listPipelines({ services, user }: KabutoCall): Promise<KabutoReply> {
  const me = await user();
  const pipelines = await allPipelines(services, me);
  return ok(Object.fromEntries(await Promise.all(pipelines.map(async (p) => [String(p.id), pipelineJson(p, await services.pipelines.jobs(me, p.id))]))));
}

export async function getPipeline({ services, user, params: [id] }: KabutoCall): Promise<KabutoReply> {
  const me = await user();
  const pipeline = await orNull(services.pipelines.get(me, Number(id)));
  if (!pipeline) return ok({});
  return ok({ [pipeline.id]: pipelineJson(pipeline, await services.pipelines.jobs(me, pipeline.id)) });
}

/** Kabuto's pipelines ran every job whatever the others did: `continueOnFailure` keeps that. */
export async function createPipeline({ services, user, input }: KabutoCall): Promise<KabutoReply> {
  const me = await user();
  const name = (await input()).required('name');
  const pipeline = await services.pipelines.create(me, name, true);
  return ok({ id: pipeline.id });
}

/** `name`, `remove_jobs` and `rearrange_jobs` (comma-separated job ids), each answered under its own key. */
export async function updatePipeline({ services, user, input, params: [id] }: KabutoCall): Promise<KabutoReply> {
  const me = await user();
  const pipeline = await orMissing(services.pipelines.get(me, Number(id)), PIPELINE_NO_RIGHTS);
  const body = await input();
  const answer: Record<string, string> = {};
  const name = body.optional('name');
  if (name !== undefined) {
    await services.pipelines.update(me, pipeline.id, { name });
    answer['name'] = 'Successfully updated name';
  }
  const remove = idList(body.optional('remove_jobs'));
  if (remove.length > 0) {
    const ids = new Set((await services.pipelines.jobs(me, pipeline.id)).map((job) => job.id));
    for (const jobId of remove.filter((j) => ids.has(j))) await services.jobs.remove(me, jobId);
    answer['remove_jobs'] = 'Successfully removed jobs';
  }
  const order = idList(body.optional('rearrange_jobs'));
  if (order.length > 0) {
    const current = (await services.pipelines.jobs(me, pipeline.id)).map((job) => job.id);
    if (order.length !== current.length || [...order].sort((a, b) => a - b).join() !== [...current].sort((a, b) => a - b).join()) {
      answer['rearrange_jobs'] = `Could not rearrange jobs. rearrange ids are [${order.join(', ')}] while current ids are [${current.join(', ')}]`;
    } else {
      for (const [position, jobId] of order.entries()) await services.jobs.move(me, jobId, position);
      answer['rearrange_jobs'] = 'Successfully removed jobs'; // sic, Kabuto's text
    }
  }
  return ok(answer);
}

/** Unlike Kabuto, which left them orphaned, the pipeline's jobs go with it (with their logs and files). */
export async function deletePipeline({ services, user, params: [id] }: KabutoCall): Promise<KabutoReply> {
  await orMissing(services.pipelines.delete(await user(), Number(id)), PIPELINE_DELETE_NO_RIGHTS);
  return ok({ status: 'Successfully deleted the pipeline' });
}

/** `{"<jid>": "in_queue", …}`; `{}` for a pipeline without jobs, as in Kabuto. */
export async function submitPipeline({ services, user, params: [id] }: KabutoCall): Promise<KabutoReply> {
  const me = await user();
  const pipeline = await orMissing(services.pipelines.get(me, Number(id)), 'Pipeline not found');
  if ((await services.pipelines.jobs(me, pipeline.id)).length === 0) return ok({});
  const jobs = await services.pipelines.submit(me, pipeline.id);
  return ok(Object.fromEntries(jobs.map((job) => [String(job.id), jobState(job.state)])));
}

/** Every job of the user's pipelines. */
export async function listAllJobs({ services, user }: KabutoCall): Promise<KabutoReply> {
  const me = await user();
  const jobs: Job[] = [];
  for (const pipeline of await allPipelines(services, me)) jobs.push(...(await services.pipelines.jobs(me, pipeline.id)));
  return ok(byId(jobs, jobJson));
}

export async function listJobs({ services, user, params: [pid] }: KabutoCall): Promise<KabutoReply> {
  return ok(byId(await services.pipelines.jobs(await user(), Number(pid)), jobJson));
}

/** `command` is split like a shell would (not run by one: write `sh -c '…'` for that); `attachments` land in /inbox. */
export async function addJob({ services, user, input, params: [pid] }: KabutoCall): Promise<KabutoReply> {
  const me = await user();
  const body = await input();
  const imageId = body.required('image_id');
  const command = body.required('command');
  const job = await addErrors(services.jobs.add(me, Number(pid), { imageId: idOf(imageId), commandLine: command, attachments: body.files('attachments').map(incomingFile) }));
  return ok({ id: job.id });
}

/**
 * The job, or `{}`; with `?result` (any value), a zip of what the job left in /outbox once it is done.
 * Results are only given for a job that ended `done`, as in Kabuto.
 */
export async function getJob(call: KabutoCall): Promise<KabutoReply> {
  const { services, user, params: [pid, jid], query } = call;
  const me = await user();
  const job = await orNull(jobOf(services, me, pid!, jid!));
  if (!query.has('result')) return ok(job ? byId([job], jobJson) : {});
  if (!job) throw new KabutoError('Job not found');
  if (job.state !== 'SUCCEEDED') throw new KabutoError('Job has not finished running, or has failed');
  await sendResults(call, job);
  return SENT;
}

/** Kabuto's PUT changes a job in place: `image_id`, `command`, and new `attachments` (replacing any of the same name). */
export async function updateJob({ services, user, input, params: [pid, jid] }: KabutoCall): Promise<KabutoReply> {
  const me = await user();
  const job = await orMissing(jobOf(services, me, pid!, jid!), JOB_NO_RIGHTS);
  const body = await input();
  const imageId = body.optional('image_id');
  const command = body.optional('command');
  const updated = await addErrors(
    services.jobs.update(me, job.id, {
      imageId: imageId === undefined ? null : idOf(imageId),
      commandLine: command ?? null,
      attachments: body.files('attachments').map(incomingFile),
    }),
  );
  return ok({ id: updated.id });
}

export async function deleteJob({ services, user, params: [pid, jid] }: KabutoCall): Promise<KabutoReply> {
  const me = await user();
  const job = await orMissing(jobOf(services, me, pid!, jid!), JOB_NO_RIGHTS);
  await services.jobs.remove(me, job.id);
  return ok({ message: 'Successfully deleted job' });
}

/** A GET, as in Kabuto. The jobs service decides what can be stopped; a job it leaves alone was not running. */
export async function killJob({ services, user, params: [pid, jid] }: KabutoCall): Promise<KabutoReply> {
  const me = await user();
  const job = await orMissing(jobOf(services, me, pid!, jid!), JOB_NO_RIGHTS);
  const after = await services.jobs.cancel(me, job.id);
  if (after.state !== 'CANCELED' && !after.cancelRequestedAt) throw new KabutoError('Cannot kill a job that is not running');
  return ok({ message: 'Success' });
}

/** The job's output lines after `log_id` (the line number, from 1): `[{"id", "job", "logline"}]`; `[]` for an unknown job. */
export async function jobLogs({ services, user, params: [jid, after] }: KabutoCall): Promise<KabutoReply> {
  const me = await user();
  const jobId = Number(jid);
  const lines: unknown[] = [];
  try {
    for (let seq = after === undefined ? 0 : Number(after); ; ) {
      const page = await services.jobs.readLogs(me, jobId, seq, LOG_PAGE);
      lines.push(...page.map((line) => logLineJson(jobId, line)));
      if (page.length < LOG_PAGE) break;
      seq = page.at(-1)!.seq;
    }
  } catch (error) {
    if (error instanceof DomainError && error.code === 'NOT_FOUND') return ok([]);
    throw error;
  }
  return ok(lines);
}

/** The job, when it is in this pipeline; NOT_FOUND otherwise (Kabuto did not check the pipeline). */
async function jobOf(services: Services, user: User, pid: string, jid: string): Promise<Job> {
  const job = await services.jobs.get(user, Number(jid));
  if (job.pipeline.id !== Number(pid)) throw new DomainError('NOT_FOUND', 'No such job.');
  return job;
}

/** Every pipeline of the user, page by page. */
async function allPipelines(services: Services, user: User): Promise<Pipeline[]> {
  const all: Pipeline[] = [];
  for (let offset = 0; ; offset += PAGE) {
    const page = await services.pipelines.list(user, null, PAGE, offset);
    all.push(...page);
    if (page.length < PAGE) return all.sort((a, b) => a.id - b.id);
  }
}

/** Adding a job: the jobs service's "no such image" and "no such pipeline" in Kabuto's words. */
async function addErrors(work: Promise<Job>): Promise<Job> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof DomainError && error.code === 'NOT_FOUND') throw new KabutoError(error.field === 'imageId' ? 'Image not found' : 'Pipeline not found');
    throw error;
  }
}

async function orNull<T>(work: Promise<T>): Promise<T | null> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof DomainError && error.code === 'NOT_FOUND') return null;
    throw error;
  }
}

function idList(value: string | undefined): number[] {
  return (value ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map(idOf);
}

/** `results.zip`: every file of the job's /outbox (the same zip as `/jobs/<id>/results.zip`). */
async function sendResults({ services, res }: KabutoCall, job: Job): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/zip', 'content-disposition': 'attachment; filename=results.zip', 'cache-control': 'no-store' });
  await sendResultsZip(services.jobs.outboxDir(job), job, res);
}
