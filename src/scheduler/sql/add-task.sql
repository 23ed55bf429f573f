-- params: kind, payload (json text), run_at, max_attempts, affinity (worker id or null)
insert into tasks (kind, payload, run_at, max_attempts, affinity)
values (?, ?::jsonb, ?, ?, ?)
returning id
