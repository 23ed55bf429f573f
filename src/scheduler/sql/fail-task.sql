-- params: error, retry delay (seconds), task id, worker id
-- Unlocks the task for a later attempt, or marks it failed when it has none left.
update tasks
set locked_at = null,
    locked_by = null,
    last_error = ?,
    run_at = now() + make_interval(secs => ?),
    failed_at = case when attempts >= max_attempts then now() end
where id = ? and locked_by = ?
