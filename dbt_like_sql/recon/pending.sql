-- Cross-rail flows not closed yet but still inside their kind's tolerance at the tenant's QBO clock of its last
-- sync: a payout on its way to the bank, card spend not booked yet, a payment the bank has not shown yet. Each
-- becomes a row of recon.breaks at `due_at` unless it closes first (docs/reconciliation.md).
-- config: materialized=tenant_table

with final as (
    select tenant_id, break_id, kind, amount_minor, currency, due_at, evidence, subject_rail, subject_type, subject_id
    from recon.exceptions
    where as_of < due_at
)

select * from final
