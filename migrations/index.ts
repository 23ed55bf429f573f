// Every migration, in the order it runs. A new migration is a new file here and a new line below.
import { Migration0001Accounts } from './0001-accounts.ts';

export const migrations = [Migration0001Accounts];
