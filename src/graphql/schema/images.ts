// GraphQL for images and stored registry logins.
import { builder } from '../builder.ts';
import type { Image } from '../../domain/images/image.entity.ts';
import type { RegistryCredential } from '../../domain/images/registry-credential.entity.ts';
import { parseId } from '../ids.ts';

export const ImageRef = builder.objectRef<Image>('Image');

ImageRef.implement({
  description: 'A named image of yours. Each build of it is a Build; the last successful one is what the image is.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    repository: t.exposeString('repository', { description: 'Generated, inside your namespace: `<namespace>/<login>/<name>`.' }),
    dockerImageId: t.exposeString('dockerImageId', { nullable: true, description: 'The engine image id (`sha256:…`) of the last successful build.' }),
    sizeBytes: t.float({ nullable: true, resolve: (image) => image.sizeBytes ?? null }),
    tags: t.exposeStringList('tags'),
    dockerfile: t.exposeString('dockerfile', { nullable: true }),
    pushedTo: t.exposeString('pushedTo', { nullable: true }),
    digest: t.exposeString('digest', { nullable: true, description: 'Manifest digest reported by the registry after the last push.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const RegistryCredentialRef = builder.objectRef<RegistryCredential>('RegistryCredential').implement({
  description: 'A stored registry login. The password is never shown.',
  fields: (t) => ({
    registry: t.exposeString('registry'),
    username: t.exposeString('username'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.queryFields((t) => ({
  images: t.withAuth({ user: true }).field({
    type: [ImageRef],
    resolve: (_root, _args, { viewer, services }) => services.images.list(viewer.user),
  }),
  image: t.withAuth({ user: true }).field({
    type: ImageRef,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, { viewer, services }) => services.images.get(viewer.user, parseId(args.id)),
  }),
  registryCredentials: t.withAuth({ user: true }).field({
    type: [RegistryCredentialRef],
    resolve: (_root, _args, { viewer, services }) => services.images.listRegistryCredentials(viewer.user),
  }),
}));

builder.mutationFields((t) => ({
  deleteImage: t.withAuth({ user: true }).field({
    type: ImageRef,
    description: 'Deletes the image, its builds and logs, and the engine images built for it.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, { viewer, services }) => services.images.delete(viewer.user, parseId(args.id)),
  }),
  saveRegistryCredential: t.withAuth({ user: true }).field({
    type: RegistryCredentialRef,
    description: 'Stores your login for a registry (replacing an earlier one); builds that push there without credentials use it.',
    args: {
      registry: t.arg.string({ required: true }),
      username: t.arg.string({ required: true }),
      password: t.arg.string({ required: true }),
    },
    resolve: (_root, args, { viewer, services }) => services.images.saveRegistryCredential(viewer.user, args.registry, args.username, args.password),
  }),
  deleteRegistryCredential: t.withAuth({ user: true }).boolean({
    args: { registry: t.arg.string({ required: true }) },
    resolve: (_root, args, { viewer, services }) => services.images.deleteRegistryCredential(viewer.user, args.registry),
  }),
}));
