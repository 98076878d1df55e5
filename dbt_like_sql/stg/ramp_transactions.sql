-- Every logged version of every Ramp card transaction, one row per log row, with typed columns.
-- Money: amount_cents is Ramp's `amount` (decimal major units) in integer minor units, positive = spend;
-- original_amount_cents is `original_transaction_amount.amount`, which Ramp already sends in minor units. A
-- number with more than two decimals, a string or an absent amount is null, never rounded; the contract
-- quarantines it. state moves PENDING -> CLEARED (settlement_date set) or DECLINED; the history keeps each step.
-- config: materialized=view
-- config: key=transaction_id
-- config: derive=mirror,history

with log as (
    select * from raw.ramp_transactions
),

-- Each payload is parsed once, into `p` (see stg/stripe_payouts.sql for why).
parsed as (
    select
        *,
        json_transform(payload, '{
            "amount": "JSON", "currency_code": "JSON", "original_transaction_amount": "JSON", "state": "JSON",
            "user_transaction_time": "JSON", "settlement_date": "JSON", "merchant_id": "JSON",
            "merchant_name": "JSON", "merchant_descriptor": "JSON", "merchant_category_code": "JSON",
            "sk_category_id": "JSON", "sk_category_name": "JSON", "card_id": "JSON", "card_holder": "JSON",
            "memo": "JSON", "statement_id": "JSON", "decline_details": "JSON", "deleted": "JSON"
        }') as p
    from log
),

final as (
    select
        tenant_id,
        entity_id as transaction_id,
        op,
        p.state ->> '$' as state,
        json_cents(p.amount) as amount_cents,
        p.currency_code ->> '$' as currency_code,
        json_minor(p.original_transaction_amount -> '$.amount') as original_amount_cents,
        p.original_transaction_amount ->> '$.currency_code' as original_currency_code,
        try_cast(p.user_transaction_time ->> '$' as timestamptz) as user_transaction_time,
        try_cast(p.settlement_date ->> '$' as timestamptz) as settlement_date,
        p.merchant_id ->> '$' as merchant_id,
        p.merchant_name ->> '$' as merchant_name,
        p.merchant_descriptor ->> '$' as merchant_descriptor,
        p.merchant_category_code ->> '$' as merchant_category_code,
        try_cast(p.sk_category_id ->> '$' as bigint) as sk_category_id,
        p.sk_category_name ->> '$' as sk_category_name,
        p.card_id ->> '$' as card_id,
        p.card_holder ->> '$.user_id' as user_id,
        p.memo ->> '$' as memo,
        p.statement_id ->> '$' as statement_id,
        p.decline_details ->> '$.reason' as decline_reason,
        observed_at as last_synced_at,
        source as sync_source,
        seq as log_seq,
        payload_hash
    from parsed
)

select * from final
