-- $1 source, $2 source id: the highest seq stored (null for none)
select max(seq) as seq from log_lines where source = $1 and source_id = $2
