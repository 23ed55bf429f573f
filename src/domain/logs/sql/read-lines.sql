-- $1 source, $2 source id: up to $4 lines with seq > $3, in order
select seq, stream, text, at
from log_lines
where source = $1 and source_id = $2 and seq > $3
order by seq
limit $4
