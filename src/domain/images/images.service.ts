// Images and the registry credentials used to push them. Every read is scoped to the owner, so
// another user's image reads exactly like a missing one.
import type { Orm } from '../../db/orm.ts';
import type { ContainerEngine } from '../../runner/engine.ts';
import type { SecretBox } from '../../auth/secret-box.ts';
import type { User } from '../users/user.entity.ts';
import { DomainError } from '../errors.ts';
import { Build } from '../builds/build.entity.ts';
import { Job } from '../jobs/job.entity.ts';
import { checkPushRegistry, checkRegistry } from '../builds/build-input.ts';
import { LogLine } from '../logs/log-line.entity.ts';
import { Image } from './image.entity.ts';
import { RegistryCredential } from './registry-credential.entity.ts';

export class ImagesService {
  readonly #orm: Orm;
  readonly #engine: ContainerEngine;
  readonly #secrets: SecretBox;

  constructor(orm: Orm, engine: ContainerEngine, secrets: SecretBox) {
    this.#orm = orm;
    this.#engine = engine;
    this.#secrets = secrets;
  }

  async list(user: User): Promise<Image[]> {
    return this.#orm.em.fork().find(Image, { owner: user.id }, { orderBy: { id: 'asc' } });
  }

  async get(user: User, id: number): Promise<Image> {
    const image = Number.isSafeInteger(id) ? await this.#orm.em.fork().findOne(Image, { id, owner: user.id }) : null;
    if (!image) throw new DomainError('NOT_FOUND', 'No such image.');
    return image;
  }

  /** Deletes the image, its builds and their logs, and every engine image built for it. */
  async delete(user: User, id: number): Promise<Image> {
    const image = await this.get(user, id);
    const em = this.#orm.em.fork();
    if ((await em.count(Build, { image: image.id, state: { $in: ['QUEUED', 'RUNNING'] } })) > 0) {
      throw new DomainError('CONFLICT', 'The image has a build queued or running; cancel it first.');
    }
    // Checked before anything is removed from the engine: jobs would be left with an image that is gone.
    if ((await em.count(Job, { image: image.id })) > 0) {
      throw new DomainError('CONFLICT', 'Jobs use this image; remove them (or their pipelines) first.');
    }
    await this.#engine.removeRepository(image.repository);
    const builds = await em.find(Build, { image: image.id }, { fields: ['id'] });
    await em.transactional(async (tx) => {
      await tx.nativeDelete(LogLine, { source: 'build', sourceId: { $in: builds.map((b) => b.id) } });
      await tx.nativeDelete(Image, { id: image.id });
    });
    return image;
  }

  /** Stores (or replaces) the user's login for a registry. The password is sealed and never read back. */
  async saveRegistryCredential(user: User, registryInput: string, username: string, password: string): Promise<RegistryCredential> {
    const registry = checkPushRegistry(registryInput);
    if (username.trim() === '' || password === '') throw new DomainError('INVALID_INPUT', 'A registry login needs a username and a password.', 'username');
    const em = this.#orm.em.fork();
    const existing = await em.findOne(RegistryCredential, { owner: user.id, registry });
    const credential = existing ?? em.create(RegistryCredential, { owner: user.id, registry, username: '', passwordSealed: '' });
    credential.username = username.trim();
    credential.passwordSealed = this.#secrets.seal(password);
    await em.flush();
    return credential;
  }

  async listRegistryCredentials(user: User): Promise<RegistryCredential[]> {
    return this.#orm.em.fork().find(RegistryCredential, { owner: user.id }, { orderBy: { registry: 'asc' } });
  }

  async deleteRegistryCredential(user: User, registryInput: string): Promise<boolean> {
    const deleted = await this.#orm.em.fork().nativeDelete(RegistryCredential, { owner: user.id, registry: checkRegistry(registryInput) });
    if (deleted === 0) throw new DomainError('NOT_FOUND', 'No stored login for that registry.');
    return true;
  }
}
