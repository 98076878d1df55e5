-- Cross-rail breaks: one row per flow of recon.exceptions whose tolerance has passed at the tenant's QBO clock of its
-- last sync, `detected_at` being that instant (so a rebuild gives the same rows). `status` is `open`, or `explained`
-- once a person explained it (`ledger-pipeline decide explain`, the latest decision in raw.recon_decisions): it stays
-- explained through later syncs, as `break_id` is stable. Kinds, tolerances and what to do with a break:
-- docs/reconciliation.md.
-- config: materialized=tenant_table

with explained as (
    select tenant_id, substr(entity_id, 7) as break_id, payload ->> '$.by' as explained_by,
        payload ->> '$.why' as explanation, observed_at as explained_at
    from raw.recon_decisions
    where entity_id like 'break:%'
    qualify row_number() over (partition by tenant_id, entity_id order by seq desc) = 1
),

final as (
    select
        x.tenant_id,
        x.break_id,
        x.kind,
        case when e.break_id is null then 'open' else 'explained' end as status,
        x.amount_minor,
        x.currency,
        x.due_at as detected_at,
        x.evidence,
        x.subject_rail,
        x.subject_type,
        x.subject_id,
        e.explained_by,
        e.explanation,
        e.explained_at
    from recon.exceptions x
    left join explained e on e.tenant_id = x.tenant_id and e.break_id = x.break_id
    where x.as_of >= x.due_at
)

select * from final
