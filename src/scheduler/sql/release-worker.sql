-- params: worker id
-- A worker that starts again releases what its previous run held when it stopped or crashed.
update tasks set locked_at = null, locked_by = null where locked_by = ?
