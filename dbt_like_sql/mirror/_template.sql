/* Template of the mirror of every model whose header says `-- config: derive=mirror` (with its key):
   lib/sql_models.py fills each double-braced placeholder (source: that model's name, table: its table
   name, key: its key) and builds mirror.<table>. A file mirror/<table>.sql replaces it for its table. */
-- Current state of every live entity of {{source}} per tenant (its latest logged version, unless that is a delete),
-- derived from the log alone.
-- config: materialized=mirror
-- config: key={{key}}

with versions as (
    select * from {{source}}
),

latest as (
    select *
    from versions
    qualify row_number() over (partition by tenant_id, {{key}} order by log_seq desc) = 1
),

final as (
    select * exclude (op)
    from latest
    where op <> 'deleted'
)

select * from final
