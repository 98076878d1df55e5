-- Every logged version of every Plaid item (a login at one bank), one row per log row, with typed columns.
-- error_code is Plaid's when the item is in an error state: ITEM_LOGIN_REQUIRED means a person must log in to the
-- bank again (Link's update mode) before its accounts and transactions can be read.
-- config: materialized=view
-- config: key=item_id
-- config: derive=mirror,history

with log as (
    select * from raw.plaid_items
),

-- Each payload is parsed once, into `p` (see stg/stripe_payouts.sql for why).
parsed as (
    select
        *,
        json_transform(payload, '{
            "institution_id": "JSON", "institution_name": "JSON", "webhook": "JSON", "error": "JSON",
            "available_products": "JSON", "billed_products": "JSON", "consent_expiration_time": "JSON",
            "update_type": "JSON"
        }') as p
    from log
),

final as (
    select
        tenant_id,
        entity_id as item_id,
        op,
        p.institution_id ->> '$' as institution_id,
        p.institution_name ->> '$' as institution_name,
        p.error ->> '$.error_type' as error_type,
        p.error ->> '$.error_code' as error_code,
        p.error ->> '$.error_message' as error_message,
        p.available_products as available_products,
        p.billed_products as billed_products,
        try_cast(p.consent_expiration_time ->> '$' as timestamptz) as consent_expiration_time,
        p.update_type ->> '$' as update_type,
        p.webhook ->> '$' as webhook,
        observed_at as last_synced_at,
        source as sync_source,
        seq as log_seq,
        payload_hash
    from parsed
)

select * from final
