// Every migration, in the order it runs. A new migration is a new file here and a new line below.
import { Migration0001Accounts } from './0001-accounts.ts';
import { Migration0002Tasks } from './0002-tasks.ts';
import { Migration0003Builds } from './0003-builds.ts';
import { Migration0004Pipelines } from './0004-pipelines.ts';
import { Migration0005JobAffinity } from './0005-job-affinity.ts';

export const migrations = [Migration0001Accounts, Migration0002Tasks, Migration0003Builds, Migration0004Pipelines, Migration0005JobAffinity];
