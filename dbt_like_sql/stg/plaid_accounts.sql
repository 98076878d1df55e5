-- Every logged version of every Plaid account, one row per log row: each version is a balance reading.
-- Money: Plaid sends balances as JSON numbers in major units (dollars); they are typed as integer minor units
-- (cents) by json_cents, and a value with more than two decimals, a string or an absent one is null, never
-- rounded. current is the posted balance (on a credit account: what is owed); available subtracts pending debits.
-- item_id is the item the account was read through (the log adds it: Plaid's account does not carry it).
-- config: materialized=view
-- config: key=account_id
-- config: derive=mirror,history

with log as (
    select * from raw.plaid_accounts
),

-- Each payload is parsed once, into `p` (see stg/stripe_payouts.sql for why).
parsed as (
    select
        *,
        json_transform(payload, '{
            "item_id": "JSON", "name": "JSON", "official_name": "JSON", "mask": "JSON", "type": "JSON",
            "subtype": "JSON", "balances": "JSON"
        }') as p
    from log
),

final as (
    select
        tenant_id,
        entity_id as account_id,
        op,
        p.item_id ->> '$' as item_id,
        p.name ->> '$' as name,
        p.official_name ->> '$' as official_name,
        p.mask ->> '$' as mask,
        p.type ->> '$' as type,
        p.subtype ->> '$' as subtype,
        json_cents(p.balances -> '$.current') as current_cents,
        json_cents(p.balances -> '$.available') as available_cents,
        json_cents(p.balances -> '$.limit') as limit_cents,
        p.balances ->> '$.iso_currency_code' as iso_currency_code,
        p.balances ->> '$.unofficial_currency_code' as unofficial_currency_code,
        observed_at as last_synced_at,
        source as sync_source,
        seq as log_seq,
        payload_hash
    from parsed
)

select * from final
