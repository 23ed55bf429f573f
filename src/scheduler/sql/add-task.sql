-- params: kind, payload (json text), run_at, max_attempts
insert into tasks (kind, payload, run_at, max_attempts)
values (?, ?::jsonb, ?, ?)
returning id
