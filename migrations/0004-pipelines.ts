import { Migration } from '@mikro-orm/migrations';

export class Migration0004Pipelines extends Migration {
  override name = '0004-pipelines';

  override up(): void {
    this.addSql(`create table "pipelines" (
      "id" serial primary key,
      "owner_id" int not null references "users" ("id") on delete cascade,
      "name" varchar(200) not null,
      "continue_on_failure" boolean not null default false,
      "state" varchar(16) not null check ("state" in ('IDLE', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELED')),
      "cancel_requested_at" timestamptz null,
      "created_at" timestamptz not null default now(),
      "submitted_at" timestamptz null,
      "finished_at" timestamptz null);`);
    this.addSql(`create index "pipelines_owner_id_index" on "pipelines" ("owner_id", "id");`);
    this.addSql(`create table "jobs" (
      "id" serial primary key,
      "pipeline_id" int not null references "pipelines" ("id") on delete cascade,
      "owner_id" int not null references "users" ("id") on delete cascade,
      "image_id" int not null references "images" ("id") on delete restrict,
      "position" int not null,
      "command" jsonb not null,
      "env" jsonb not null default '{}',
      "attachments" jsonb not null default '[]',
      "timeout_seconds" int not null,
      "cpus" double precision not null,
      "memory_bytes" bigint not null,
      "state" varchar(16) not null check ("state" in ('READY', 'QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'ERRORED', 'CANCELED', 'TIMED_OUT', 'SKIPPED')),
      "exit_code" int null,
      "error" text null,
      "results" jsonb not null default '[]',
      "log_truncated" boolean not null default false,
      "cpu_seconds" double precision null,
      "peak_memory_bytes" bigint null,
      "bytes_read" bigint null,
      "bytes_written" bigint null,
      "container_id" varchar(80) null,
      "work_dir" varchar(255) not null,
      "cancel_requested_at" timestamptz null,
      "dispatched_at" timestamptz null,
      "created_at" timestamptz not null default now(),
      "queued_at" timestamptz null,
      "started_at" timestamptz null,
      "finished_at" timestamptz null);`);
    this.addSql(`create index "jobs_pipeline_id_index" on "jobs" ("pipeline_id", "position");`);
    this.addSql(`create index "jobs_owner_id_index" on "jobs" ("owner_id", "id");`);
    this.addSql(`create index "jobs_image_id_index" on "jobs" ("image_id");`);
  }

  override down(): void {
    this.addSql('drop table if exists "jobs";');
    this.addSql('drop table if exists "pipelines";');
  }
}
