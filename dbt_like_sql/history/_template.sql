/* Template of the history of every model whose header says `-- config: derive=history` (with its key):
   lib/sql_models.py fills each double-braced placeholder (source: that model's name, table: its table
   name, key: its key) and builds history.<table>. A file history/<table>.sql replaces it for its table. */
-- Every version of every entity of {{source}} with the interval in which it was current (SCD2).
-- A version is valid from when a sync logged it until the next logged version (a delete closes it).
-- config: materialized=history
-- config: key={{key}}

with versions as (
    select * from {{source}}
),

final as (
    select
        *,
        last_synced_at as valid_from,
        lead(last_synced_at) over (partition by tenant_id, {{key}} order by log_seq) as valid_to,
        valid_to is null and op <> 'deleted' as is_current
    from versions
)

select * from final
