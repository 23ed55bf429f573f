// What the service writes on the images it builds, and how it recognises them.
import type { Build } from './build.entity.ts';

/** The one label Dockyard puts on the images it builds. */
export const BUILD_LABEL = 'io.dockyard.build';

/**
 * What the service says about an image it built: one label, `io.dockyard.build`, whose value is JSON
 * (`{"build":12,"image":3,"owner":7}`). One, because the classic builder turns every label of a build
 * into a LABEL step of its own, each a container and a commit (~100 ms). Images are found by repository;
 * the label only tells that an image is Dockyard's (never an operator's base; its leftover push names are
 * removed at start), and tells operators whose it is.
 */
export function serviceLabels(build: Pick<Build, 'id' | 'image' | 'owner'>): Record<string, string> {
  return { [BUILD_LABEL]: JSON.stringify({ build: build.id, image: build.image.id, owner: build.owner.id }) };
}
