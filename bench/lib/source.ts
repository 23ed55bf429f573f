// Which code the Dockyard servers run. By default the working tree (to measure a change before it is
// committed); with BENCH_SOURCE=<commit or ref> a snapshot of that commit, extracted with `git archive`
// into /tmp (nothing in the repository changes), so that a recorded table is of one known commit even
// while someone edits and commits in the working tree.
import { execFileSync, execSync } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const REPO = path.resolve(import.meta.dirname, '../..');

export interface Source {
  /** Where `node src/main.ts` runs. */
  root: string;
  /** What to record: a commit, and whether the working tree's src/ differed from it. */
  describe(): string;
}

export function resolveSource(ref: string | undefined): Source {
  if (!ref) {
    const startedAt = head();
    return {
      root: REPO,
      describe: () => {
        const now = head();
        const dirty = git(['--no-optional-locks', 'status', '--porcelain', '--', 'src', 'migrations']) !== '';
        if (now !== startedAt) return `working tree: HEAD moved from ${startedAt} to ${now} during the run${dirty ? ', with uncommitted changes in src/ or migrations/' : ''}`;
        return `${now} (working tree${dirty ? ', with uncommitted changes in src/ or migrations/' : ''})`;
      },
    };
  }
  const commit = git(['rev-parse', '--verify', `${ref}^{commit}`]);
  const root = path.join(os.tmpdir(), `dockyard-bench-src-${commit.slice(0, 12)}`);
  if (!existsSync(path.join(root, 'src', 'main.ts'))) {
    mkdirSync(root, { recursive: true });
    // Read-only for the repository: git archive writes the commit's files to stdout.
    execSync(`git archive ${commit} | tar -x -C ${JSON.stringify(root)}`, { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
    symlinkSync(path.join(REPO, 'node_modules'), path.join(root, 'node_modules'));
  }
  return { root, describe: () => `${commit.slice(0, 12)} (snapshot in ${root})` };
}

function head(): string {
  return git(['rev-parse', '--short=12', 'HEAD']);
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}
