-- params: source, source id, lines as a JSON array of {seq, stream, text, at}
insert into log_lines (source, source_id, seq, stream, text, at)
select ?, ?, line.seq, line.stream, line.text, line.at
from jsonb_to_recordset(?::jsonb) as line(seq int, stream text, text text, at timestamptz)
-- A batch stored once but retried (its answer was lost) is not an error.
on conflict do nothing
