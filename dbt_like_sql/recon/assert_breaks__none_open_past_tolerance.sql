-- Open breaks: flows between the rails that did not close within their kind's tolerance and that no person has
-- explained yet (`ledger-pipeline decide explain`). The metadata counts them by kind and shows the first ones with
-- their evidence; docs/reconciliation.md says what to do with each kind.
-- config: severity=warn
-- config: count_by=kind
with final as (
    select tenant_id, kind, break_id, amount_minor, detected_at, evidence
    from recon.breaks
    where status = 'open'
)

select * from final
