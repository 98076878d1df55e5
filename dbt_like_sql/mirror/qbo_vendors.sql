-- Current state of every QBO vendor per tenant (inactive ones included, flagged), derived from the log alone.
-- config: materialized=mirror
-- config: key=qbo_id

with versions as (
    select * from stg.qbo_vendors
),

latest as (
    select *
    from versions
    qualify row_number() over (partition by tenant_id, qbo_id order by log_seq desc) = 1
),

final as (
    select * exclude (op)
    from latest
    where op <> 'deleted'
)

select * from final
