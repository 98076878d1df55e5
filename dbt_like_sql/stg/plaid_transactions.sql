-- Every logged version of every Plaid transaction, one row per log row, with typed columns.
-- Money: amount_cents is Plaid's amount in integer minor units with Plaid's sign: positive = money out of the
-- account (a debit; on a credit card, a purchase), negative = money in. A JSON number with more than two decimals,
-- a string or an absent amount is null, never rounded; the mirror contract quarantines it.
-- A posted transaction that replaced a pending one names it in pending_transaction_id; the pending one was
-- removed in the same sync (its delete is in the history, and so are its amount and name while pending).
-- A removed transaction's version (op = deleted) carries only its id and account.
-- config: materialized=view
-- config: key=transaction_id
-- config: derive=mirror,history

with log as (
    select * from raw.plaid_transactions
),

-- Each payload is parsed once, into `p` (see stg/stripe_payouts.sql for why).
parsed as (
    select
        *,
        json_transform(payload, '{
            "account_id": "JSON", "amount": "JSON", "iso_currency_code": "JSON", "unofficial_currency_code": "JSON",
            "date": "JSON", "authorized_date": "JSON", "datetime": "JSON", "authorized_datetime": "JSON",
            "pending": "JSON", "pending_transaction_id": "JSON", "name": "JSON", "merchant_name": "JSON",
            "original_description": "JSON", "payment_channel": "JSON", "personal_finance_category": "JSON",
            "counterparties": "JSON", "check_number": "JSON", "transaction_code": "JSON", "website": "JSON",
            "merchant_entity_id": "JSON"
        }') as p
    from log
),

final as (
    select
        tenant_id,
        entity_id as transaction_id,
        op,
        p.account_id ->> '$' as account_id,
        json_cents(p.amount) as amount_cents,
        p.iso_currency_code ->> '$' as iso_currency_code,
        p.unofficial_currency_code ->> '$' as unofficial_currency_code,
        try_cast(p.date ->> '$' as date) as date,
        try_cast(p.authorized_date ->> '$' as date) as authorized_date,
        try_cast(p.datetime ->> '$' as timestamptz) as datetime,
        try_cast(p.authorized_datetime ->> '$' as timestamptz) as authorized_datetime,
        try_cast(p.pending ->> '$' as boolean) as pending,
        p.pending_transaction_id ->> '$' as pending_transaction_id,
        p.name ->> '$' as name,
        p.merchant_name ->> '$' as merchant_name,
        p.original_description ->> '$' as original_description,
        p.payment_channel ->> '$' as payment_channel,
        p.personal_finance_category ->> '$.primary' as category_primary,
        p.personal_finance_category ->> '$.detailed' as category_detailed,
        p.counterparties as counterparties,
        p.check_number ->> '$' as check_number,
        p.transaction_code ->> '$' as transaction_code,
        p.website ->> '$' as website,
        p.merchant_entity_id ->> '$' as merchant_entity_id,
        observed_at as last_synced_at,
        source as sync_source,
        seq as log_seq,
        payload_hash
    from parsed
)

select * from final
