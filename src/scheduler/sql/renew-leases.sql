-- params: worker id, task ids (expanded list)
-- A worker renews the lease on the tasks it is running, so that nobody takes them over.
update tasks set locked_at = now() where locked_by = ? and id in (?)
