-- params: worker id, kinds (expanded list), affinity (the worker's instance), lease (seconds)
-- Locks the oldest due task of these kinds that no one holds, or whose holder stopped renewing its
-- lease (that instance is gone). A task tied to one instance (affinity) is that instance's, unless
-- its lease lapsed: then anyone takes it over, to end it. Concurrent claimers skip each other's rows.
update tasks
set locked_at = now(), locked_by = ?, attempts = attempts + 1
where id = (
  select id from tasks
  where kind in (?) and failed_at is null and run_at <= now()
    and (
      (locked_at is null and (affinity is null or affinity = ?))
      or locked_at < now() - make_interval(secs => ?)
    )
  order by run_at, id
  limit 1
  for update skip locked
)
returning id, kind, payload, attempts, max_attempts
