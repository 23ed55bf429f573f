-- $1 source, $2 source id, then one array per column: $3 seqs, $4 streams, $5 texts, $6 times (epoch ms)
-- No ON CONFLICT clause (it costs a third of the insert): a batch is one statement, so a retried batch
-- that conflicts was stored whole by its first attempt, and the caller takes the unique violation as done.
insert into log_lines (source, source_id, seq, stream, text, at)
select $1, $2, line.seq, line.stream, line.text, to_timestamp(line.ms / 1000.0)
from unnest($3::int[], $4::text[], $5::text[], $6::float8[]) as line(seq, stream, text, ms)
