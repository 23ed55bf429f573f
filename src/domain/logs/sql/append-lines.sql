-- $1 source, $2 source id, $3 the lines as a JSON array of {seq, stream, text, at}
insert into log_lines (source, source_id, seq, stream, text, at)
select $1, $2, line.seq, line.stream, line.text, line.at
from jsonb_to_recordset($3::jsonb) as line(seq int, stream text, text text, at timestamptz)
-- A batch stored once but retried (its answer was lost) is not an error.
on conflict do nothing
