-- params: task id, worker id
delete from tasks where id = ? and locked_by = ?
