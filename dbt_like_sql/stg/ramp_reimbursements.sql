-- Every logged version of every Ramp reimbursement (out-of-pocket spend paid back to an employee), one row per
-- log row. Money: Ramp's `amount` is decimal major units; amount_cents is integer minor units, never rounded.
-- config: materialized=view
-- config: key=reimbursement_id
-- config: derive=mirror,history

with log as (
    select * from raw.ramp_reimbursements
),

parsed as (
    select
        *,
        json_transform(payload, '{
            "amount": "JSON", "currency": "JSON", "user_id": "JSON", "user_full_name": "JSON", "merchant": "JSON",
            "state": "JSON", "created_at": "JSON", "updated_at": "JSON", "transaction_date": "JSON"
        }') as p
    from log
),

final as (
    select
        tenant_id,
        entity_id as reimbursement_id,
        op,
        p.state ->> '$' as state,
        json_cents(p.amount) as amount_cents,
        p.currency ->> '$' as currency,
        p.user_id ->> '$' as user_id,
        p.user_full_name ->> '$' as user_full_name,
        p.merchant ->> '$' as merchant,
        try_cast(p.created_at ->> '$' as timestamptz) as created_at,
        try_cast(p.updated_at ->> '$' as timestamptz) as updated_at,
        try_cast(p.transaction_date ->> '$' as date) as transaction_date,
        observed_at as last_synced_at,
        source as sync_source,
        seq as log_seq,
        payload_hash
    from parsed
)

select * from final
