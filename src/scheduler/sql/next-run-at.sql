-- params: kinds (expanded list)
-- When the earliest waiting task of these kinds becomes due (null when none waits).
select min(run_at) as run_at from tasks where kind in (?) and locked_at is null and failed_at is null
