-- params: kinds (expanded list), affinity (the worker's instance), lease (seconds), limit, worker id
-- Locks the oldest due tasks of these kinds (up to `limit`: a worker asks for as many as it has free
-- slots, in one statement) that no one holds, or whose holder stopped renewing its lease (that instance
-- is gone). A task tied to one instance (affinity) is that instance's, unless its lease lapsed: then
-- anyone takes it over, to end it. Concurrent claimers skip each other's rows. The chosen rows are
-- materialized once, so that the limit holds whatever plan PostgreSQL picks for the update.
with chosen as materialized (
  select id from tasks
  where kind in (?) and failed_at is null and run_at <= now()
    and (
      (locked_at is null and (affinity is null or affinity = ?))
      or locked_at < now() - make_interval(secs => ?)
    )
  order by run_at, id
  limit ?
  for update skip locked
)
update tasks
set locked_at = now(), locked_by = ?, attempts = attempts + 1
from chosen
where tasks.id = chosen.id
returning tasks.id, tasks.kind, tasks.payload, tasks.attempts, tasks.max_attempts, tasks.run_at
