-- $1 source, $2 source id, then one array per column: $3 seqs, $4 streams, $5 texts, $6 times (epoch ms)
insert into log_lines (source, source_id, seq, stream, text, at)
select $1, $2, line.seq, line.stream, line.text, to_timestamp(line.ms / 1000.0)
from unnest($3::int[], $4::text[], $5::text[], $6::float8[]) as line(seq, stream, text, ms)
-- A batch stored once but retried (its answer was lost) is not an error.
on conflict do nothing
