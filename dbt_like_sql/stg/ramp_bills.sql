-- Every logged version of every Ramp bill (bill pay), one row per log row, with typed columns.
-- Money: Ramp sends a bill's amount and its payment's as {amount, currency_code} in integer minor units.
-- remote_id is the id of the bill in the accounting system (the QBO Bill's Id): the cross-rail key.
-- Archived bills (hidden by Ramp's default list) are read on purpose: archived_at says when.
-- config: materialized=view
-- config: key=bill_id
-- config: derive=mirror,history

with log as (
    select * from raw.ramp_bills
),

parsed as (
    select
        *,
        json_transform(payload, '{
            "amount": "JSON", "status": "JSON", "approval_status": "JSON", "invoice_number": "JSON",
            "issued_at": "JSON", "due_at": "JSON", "created_at": "JSON", "paid_at": "JSON", "memo": "JSON",
            "remote_id": "JSON", "vendor": "JSON", "payment": "JSON", "archived_at": "JSON"
        }') as p
    from log
),

final as (
    select
        tenant_id,
        entity_id as bill_id,
        op,
        p.status ->> '$' as status,
        p.approval_status ->> '$' as approval_status,
        json_minor(p.amount -> '$.amount') as amount_cents,
        p.amount ->> '$.currency_code' as currency_code,
        p.invoice_number ->> '$' as invoice_number,
        try_cast(p.issued_at ->> '$' as timestamptz) as issued_at,
        try_cast(p.due_at ->> '$' as timestamptz) as due_at,
        try_cast(p.created_at ->> '$' as timestamptz) as created_at,
        try_cast(p.paid_at ->> '$' as timestamptz) as paid_at,
        p.memo ->> '$' as memo,
        p.remote_id ->> '$' as remote_id,
        p.vendor ->> '$.id' as vendor_id,
        p.vendor ->> '$.remote_id' as vendor_remote_id,
        p.vendor ->> '$.remote_name' as vendor_name,
        json_minor(p.payment -> '$.amount.amount') as payment_amount_cents,
        try_cast(p.payment ->> '$.payment_date' as timestamptz) as payment_date,
        p.payment ->> '$.payment_method' as payment_method,
        try_cast(p.archived_at ->> '$' as timestamptz) as archived_at,
        observed_at as last_synced_at,
        source as sync_source,
        seq as log_seq,
        payload_hash
    from parsed
)

select * from final
