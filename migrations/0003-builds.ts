import { Migration } from '@mikro-orm/migrations';

export class Migration0003Builds extends Migration {
  override name = '0003-builds';

  override up(): void {
    // A task that needs files only one instance has (uploads) names that instance.
    this.addSql(`alter table "tasks" add column "affinity" varchar(128) null;`);
    this.addSql(`create table "log_lines" (
      "source" varchar(8) not null check ("source" in ('build', 'job')),
      "source_id" int not null,
      "seq" int not null,
      "stream" varchar(8) not null check ("stream" in ('stdout', 'stderr', 'system')),
      "text" text not null,
      "at" timestamptz not null,
      primary key ("source", "source_id", "seq"));`);
    this.addSql(`create table "images" (
      "id" serial primary key,
      "owner_id" int not null references "users" ("id") on delete cascade,
      "name" varchar(128) not null,
      "repository" varchar(255) not null constraint "images_repository_unique" unique,
      "dockerfile" text null,
      "docker_image_id" varchar(80) null,
      "size_bytes" bigint null,
      "tags" jsonb not null default '[]',
      "pushed_to" varchar(512) null,
      "digest" varchar(80) null,
      "created_at" timestamptz not null default now(),
      "updated_at" timestamptz not null default now(),
      constraint "images_owner_name_unique" unique ("owner_id", "name"));`);
    this.addSql(`create table "builds" (
      "id" serial primary key,
      "image_id" int not null references "images" ("id") on delete cascade,
      "owner_id" int not null references "users" ("id") on delete cascade,
      "state" varchar(16) not null check ("state" in ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'ERRORED', 'CANCELED', 'TIMED_OUT')),
      "phase" varchar(16) null,
      "source" jsonb not null,
      "options" jsonb not null,
      "push" jsonb null,
      "push_secret" text null,
      "work_dir" varchar(255) not null,
      "error" text null,
      "step_current" int null,
      "step_total" int null,
      "docker_image_id" varchar(80) null,
      "version_tag" varchar(128) null,
      "commit" varchar(64) null,
      "dockerfile" text null,
      "cancel_requested_at" timestamptz null,
      "created_at" timestamptz not null default now(),
      "started_at" timestamptz null,
      "finished_at" timestamptz null);`);
    this.addSql(`create index "builds_image_id_index" on "builds" ("image_id", "id");`);
    this.addSql(`create index "builds_owner_id_index" on "builds" ("owner_id", "id");`);
    this.addSql(`create table "registry_credentials" (
      "id" serial primary key,
      "owner_id" int not null references "users" ("id") on delete cascade,
      "registry" varchar(255) not null,
      "username" varchar(255) not null,
      "password_sealed" text not null,
      "created_at" timestamptz not null default now(),
      constraint "registry_credentials_owner_registry_unique" unique ("owner_id", "registry"));`);
  }

  override down(): void {
    for (const table of ['registry_credentials', 'builds', 'images', 'log_lines']) this.addSql(`drop table if exists "${table}";`);
    this.addSql(`alter table "tasks" drop column "affinity";`);
  }
}
