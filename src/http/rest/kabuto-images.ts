// Kabuto's images and their builds. `POST /image` is a build of the user's image called `name` (the
// image is made by its first build; the same name builds the same image again); `PUT /image/<id>` builds
// that image again. Kabuto names are mapped onto Dockyard's: trimmed and lower-cased, then checked by
// the builds service like any image name. `repo_url` is a Mercurial repository and wins over `dockerfile`.
import { readFile, stat } from 'node:fs/promises';
import type { Build } from '../../domain/builds/build.entity.ts';
import type { BuildSourceInput } from '../../domain/builds/builds.service.ts';
import { DomainError } from '../../domain/errors.ts';
import type { User } from '../../domain/users/user.entity.ts';
import type { Services } from '../context.ts';
import { checkString } from '../input-guard.ts';
import { incomingFile } from './body.ts';
import { byId, buildStatusJson, imageJson } from './kabuto-format.ts';
import { KabutoError, MissingField, ok, orMissing, type KabutoCall, type KabutoInput, type KabutoReply } from './kabuto-call.ts';

const NO_RIGHTS = "You either don't have the rights to update this image, or it does not exist";
/** A `dockerfile` sent as a file part (Kabuto wanted a form field) is read as text up to this size. */
const DOCKERFILE_FILE_MAX = 1024 * 1024;
/** Build logs are read in pages of this many lines. */
const LOG_PAGE = 5000;

export async function listImages({ services, user }: KabutoCall): Promise<KabutoReply> {
  return ok(byId(await services.images.list(await user()), imageJson));
}

/** `{}` for a missing image or another user's, as Kabuto's owner-filtered GET answered. */
export async function getImage({ services, user, params: [id] }: KabutoCall): Promise<KabutoReply> {
  const me = await user();
  try {
    const image = await services.images.get(me, Number(id));
    return ok(byId([image], imageJson));
  } catch (error) {
    if (error instanceof DomainError && error.code === 'NOT_FOUND') return ok({});
    throw error;
  }
}

export async function createImage({ services, user, input }: KabutoCall): Promise<KabutoReply> {
  const me = await user();
  const body = await input();
  const build = await startBuild(services, me, body, body.required('name'));
  return ok({ status: 'Your image is being built', build_id: build.id });
}

/** Builds the image again from what the request gives. Dockyard has no renaming: another `name` is refused. */
export async function updateImage({ services, user, input, params: [id] }: KabutoCall): Promise<KabutoReply> {
  const me = await user();
  const image = await orMissing(services.images.get(me, Number(id)), NO_RIGHTS);
  const body = await input();
  const name = body.optional('name');
  if (name !== undefined && dockyardName(name) !== image.name) {
    throw new KabutoError(`An image cannot be renamed (it is "${image.name}"); POST /image with the new name makes a new image.`);
  }
  const build = await startBuild(services, me, body, image.name);
  return ok({ status: 'Your image is being built', build_id: build.id });
}

export async function deleteImage({ services, user, params: [id] }: KabutoCall): Promise<KabutoReply> {
  const me = await user();
  // An image that jobs use is refused by the service (CONFLICT), like a missing one answered in Kabuto's shape.
  await orMissing(services.images.delete(me, Number(id)), NO_RIGHTS);
  return ok({ status: 'Successfully deleted the image' });
}

/** The build's state; an unknown build (or another user's) ends the poll as a FAILURE instead of Kabuto's endless PENDING. */
export async function buildStatus({ services, user, params: [buildId, imageId] }: KabutoCall): Promise<KabutoReply> {
  const me = await user();
  let build: Build;
  try {
    build = await services.builds.get(me, Number(buildId));
  } catch (error) {
    if (error instanceof DomainError && error.code === 'NOT_FOUND') return ok({ state: 'FAILURE', error: 'No such build.', output: '' });
    throw error;
  }
  // `/image/build/<build_id>/<image_id>`: the build must be one of that image's.
  if (imageId !== undefined && build.image.id !== Number(imageId)) throw new KabutoError(`could not find image with id ${imageId}`);
  const pending = build.state === 'QUEUED' || build.state === 'RUNNING';
  return ok(buildStatusJson(build, pending ? '' : await buildOutput(services, me, build.id)));
}

/** Kabuto names are Dockyard names once trimmed and lower-cased; the builds service says which it refuses. */
function dockyardName(name: string): string {
  return name.trim().toLowerCase();
}

async function startBuild(services: Services, user: User, body: KabutoInput, name: string): Promise<Build> {
  const repoUrl = body.optional('repo_url');
  const nocache = (body.optional('nocache') ?? 'false').toLowerCase() === 'true';
  let source: BuildSourceInput;
  if (repoUrl) {
    source = { kind: 'MERCURIAL', url: repoUrl };
  } else {
    const dockerfile = body.optional('dockerfile') ?? (await dockerfileFromFile(body));
    if (dockerfile === undefined) throw new MissingField('dockerfile', 'Give a dockerfile (the text of a Dockerfile) or a repo_url (a Mercurial repository).');
    source = { kind: 'DOCKERFILE', dockerfile, files: body.files('attachments').map(incomingFile) };
  }
  try {
    return await services.builds.start(user, { imageName: dockyardName(name), source, noCache: nocache });
  } catch (error) {
    if (error instanceof DomainError && error.field === 'imageName') {
      throw new DomainError('INVALID_INPUT', `"${name.slice(0, 140)}" cannot be an image name: ${error.message}`, 'name');
    }
    throw error;
  }
}

async function dockerfileFromFile(body: KabutoInput): Promise<string | undefined> {
  const [file] = body.files('dockerfile');
  if (!file) return undefined;
  if ((await stat(file.path)).size > DOCKERFILE_FILE_MAX) throw new DomainError('TOO_LARGE', `The dockerfile is larger than ${DOCKERFILE_FILE_MAX} bytes.`, 'dockerfile');
  const text = await readFile(file.path, 'utf8');
  checkString(text, ['dockerfile']);
  return text;
}

/** The build's log lines, joined with newlines. */
export async function buildOutput(services: Services, user: User, buildId: number): Promise<string> {
  const lines: string[] = [];
  for (let after = 0; ; ) {
    const page = await services.builds.readLogs(user, buildId, after, LOG_PAGE);
    lines.push(...page.map((line) => line.text));
    if (page.length < LOG_PAGE) return lines.join('\n');
    after = page.at(-1)!.seq;
  }
}
