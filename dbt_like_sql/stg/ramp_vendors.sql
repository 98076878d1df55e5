-- Every logged version of every Ramp vendor (the payees of bill pay), one row per log row. remote_id is Ramp's
-- accounting_vendor_remote_id: the vendor's id in the accounting system (the QBO Vendor's Id).
-- config: materialized=view
-- config: key=vendor_id
-- config: derive=mirror,history

with log as (
    select * from raw.ramp_vendors
),

parsed as (
    select
        *,
        json_transform(payload, '{
            "name": "JSON", "accounting_vendor_remote_id": "JSON", "is_active": "JSON", "created_at": "JSON"
        }') as p
    from log
),

final as (
    select
        tenant_id,
        entity_id as vendor_id,
        op,
        p.name ->> '$' as name,
        p.accounting_vendor_remote_id ->> '$' as remote_id,
        try_cast(p.is_active ->> '$' as boolean) as is_active,
        try_cast(p.created_at ->> '$' as timestamptz) as created_at,
        observed_at as last_synced_at,
        source as sync_source,
        seq as log_seq,
        payload_hash
    from parsed
)

select * from final
