import { Migration } from '@mikro-orm/migrations';

export class Migration0002Tasks extends Migration {
  override name = '0002-tasks';

  override up(): void {
    // The scheduler's durable queue. A task is claimed by locking it; a finished task is deleted
    // (the build or job it drove keeps its own state); a task out of attempts keeps its last error.
    this.addSql(`create table "tasks" (
      "id" bigserial primary key,
      "kind" varchar(64) not null,
      "payload" jsonb not null default '{}',
      "run_at" timestamptz not null default now(),
      "attempts" int not null default 0,
      "max_attempts" int not null default 1 check ("max_attempts" >= 1),
      "locked_at" timestamptz null,
      "locked_by" varchar(128) null,
      "last_error" text null,
      "failed_at" timestamptz null,
      "created_at" timestamptz not null default now());`);
    this.addSql(`create index "tasks_claimable_index" on "tasks" ("kind", "run_at", "id") where "locked_at" is null and "failed_at" is null;`);
    this.addSql(`create index "tasks_locked_by_index" on "tasks" ("locked_by") where "locked_by" is not null;`);
  }

  override down(): void {
    this.addSql('drop table if exists "tasks";');
  }
}
