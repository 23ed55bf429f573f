-- params: task id, worker id
-- Gives back a task claimed but not started (the worker is stopping): as if it was never claimed.
update tasks set locked_at = null, locked_by = null, attempts = attempts - 1 where id = ? and locked_by = ?
