import { Migration } from '@mikro-orm/migrations';

export class Migration0001Accounts extends Migration {
  override name = '0001-accounts';

  override up(): void {
    this.addSql(`create table "users" (
      "id" serial primary key,
      "login" varchar(40) not null constraint "users_login_unique" unique,
      "email" varchar(254) not null constraint "users_email_unique" unique,
      "password_hash" text not null,
      "confirmation_hash" varchar(64) not null,
      "confirmation_expires_at" timestamptz not null,
      "confirmed_at" timestamptz null,
      "created_at" timestamptz not null default now());`);
    this.addSql(`create table "sessions" (
      "id" varchar(32) primary key,
      "user_id" int not null constraint "sessions_user_id_foreign" references "users" ("id") on delete cascade,
      "secret_hash" varchar(64) not null,
      "created_at" timestamptz not null default now(),
      "expires_at" timestamptz not null);`);
    this.addSql(`create index "sessions_user_id_index" on "sessions" ("user_id");`);
    this.addSql(`create table "api_tokens" (
      "id" varchar(32) primary key,
      "user_id" int not null constraint "api_tokens_user_id_foreign" references "users" ("id") on delete cascade,
      "name" varchar(100) not null,
      "secret_hash" varchar(64) not null,
      "created_at" timestamptz not null default now(),
      "expires_at" timestamptz null,
      "last_used_at" timestamptz null,
      "revoked_at" timestamptz null);`);
    this.addSql(`create index "api_tokens_user_id_index" on "api_tokens" ("user_id");`);
  }

  override down(): void {
    this.addSql('drop table if exists "api_tokens";');
    this.addSql('drop table if exists "sessions";');
    this.addSql('drop table if exists "users";');
  }
}
