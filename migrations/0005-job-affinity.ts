import { Migration } from '@mikro-orm/migrations';

export class Migration0005JobAffinity extends Migration {
  override name = '0005-job-affinity';

  override up(): void {
    // The instance whose disk holds a job's attachments: the job runs there.
    this.addSql(`alter table "jobs" add column "affinity" varchar(128) null;`);
  }

  override down(): void {
    this.addSql(`alter table "jobs" drop column "affinity";`);
  }
}
