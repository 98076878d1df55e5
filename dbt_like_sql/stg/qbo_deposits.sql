-- Every logged version of every QBO deposit (card payouts landing in the bank), one row per log row, with typed columns.
-- Money is typed by json_money (lib/model_views.py): a JSON number with at most two decimals (USD);
-- a string, a third decimal or an absent amount is null here, never rounded; the mirror contract quarantines it.
-- config: materialized=view
-- config: key=qbo_id
-- config: derive=mirror,history

with log as (
    select * from raw.qbo_deposits
),

-- Each payload is parsed once, into `p` (see stg/qbo_payments.sql for why).
parsed as (
    select
        *,
        json_transform(payload, '{
            "SyncToken": "JSON", "TxnDate": "JSON", "DepositToAccountRef": {"value": "JSON"},
            "TotalAmt": "JSON", "CurrencyRef": {"value": "JSON"}, "PrivateNote": "JSON",
            "Line": [{"Amount": "JSON", "DetailType": "JSON"}],
            "MetaData": {"CreateTime": "JSON", "LastUpdatedTime": "JSON"}
        }') as p
    from log
),

lines as (
    select
        *,
        json_line_amounts(p.Line) as line_amounts
    from parsed
),

final as (
    select
        tenant_id,
        entity_id as qbo_id,
        op,
        try_cast(p.SyncToken ->> '$' as integer) as sync_token,
        try_cast(p.TxnDate ->> '$' as date) as txn_date,
        p.DepositToAccountRef.value ->> '$' as deposit_account_id,
        json_money(p.TotalAmt) as total_amt,
        p.CurrencyRef.value ->> '$' as currency,
        case when list_count(line_amounts) = len(line_amounts)
            then cast(coalesce(list_sum(line_amounts), 0) as decimal(18, 2)) end as line_amount_total,
        coalesce(p.PrivateNote ->> '$', '') like '%Voided%' as is_voided,
        p.PrivateNote ->> '$' as private_note,
        nullif(regexp_extract(coalesce(p.PrivateNote ->> '$', ''), 'po_[A-Za-z0-9]+'), '') as payout_id,
        try_cast(p.MetaData.CreateTime ->> '$' as timestamptz) as created_at,
        try_cast(p.MetaData.LastUpdatedTime ->> '$' as timestamptz) as updated_at,
        observed_at as last_synced_at,
        source as sync_source,
        seq as log_seq,
        payload_hash
    from lines
)

select * from final
