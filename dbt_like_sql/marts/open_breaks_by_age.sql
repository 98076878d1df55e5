-- Open cross-rail breaks per tenant, kind and age (days since the break's tolerance passed, at the tenant's QBO
-- clock of its last sync): the work queue of whoever reconciles, oldest first (docs/reconciliation.md).
-- config: materialized=tenant_table

with as_of as (
    select tenant_id, max(rail_now) as as_of from meta.sync_cursors where rail = 'qbo' group by tenant_id
),
aged as (
    select b.tenant_id, b.kind, b.amount_minor, b.detected_at, date_diff('day', b.detected_at, a.as_of) as age_days
    from recon.breaks b join as_of a on a.tenant_id = b.tenant_id
    where b.status = 'open'
),

final as (
    select
        tenant_id,
        kind,
        case
            when age_days < 7 then '0-6 days'
            when age_days < 30 then '7-29 days'
            when age_days < 90 then '30-89 days'
            else '90+ days'
        end as age,
        min(age_days) as min_age_days,
        count(*) as breaks,
        cast(sum(amount_minor) as bigint) as amount_minor,
        min(detected_at) as oldest_detected_at
    from aged
    group by all
)

select * from final
