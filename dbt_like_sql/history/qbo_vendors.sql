-- Every version of every QBO vendor with the interval in which it was current (SCD2).
-- A version is valid from when a sync logged it until the next logged version (a delete closes it).
-- config: materialized=history
-- config: key=qbo_id

with versions as (
    select * from stg.qbo_vendors
),

final as (
    select
        *,
        last_synced_at as valid_from,
        lead(last_synced_at) over (partition by tenant_id, qbo_id order by log_seq) as valid_to,
        valid_to is null and op <> 'deleted' as is_current
    from versions
)

select * from final
