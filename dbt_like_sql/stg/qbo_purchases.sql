-- Every logged version of every QBO purchase (card spend booked against a credit card account), one row per log row,
-- with typed columns.
-- Money is typed by json_money (lib/model_views.py): a JSON number with at most two decimals (USD);
-- a string, a third decimal or an absent amount is null here, never rounded; the mirror contract quarantines it.
-- config: materialized=view
-- config: key=qbo_id
-- config: derive=mirror,history

with log as (
    select * from raw.qbo_purchases
),

-- Each payload is parsed once, into `p` (see stg/qbo_payments.sql for why).
parsed as (
    select
        *,
        json_transform(payload, '{
            "SyncToken": "JSON", "DocNumber": "JSON", "TxnDate": "JSON", "PaymentType": "JSON", "Credit": "JSON",
            "AccountRef": {"value": "JSON", "name": "JSON"},
            "TotalAmt": "JSON", "CurrencyRef": {"value": "JSON"}, "PrivateNote": "JSON",
            "Line": [{"Amount": "JSON", "DetailType": "JSON",
                      "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "JSON"}}}],
            "MetaData": {"CreateTime": "JSON", "LastUpdatedTime": "JSON"}
        }') as p
    from log
),

lines as (
    select
        *,
        json_line_amounts(p.Line) as line_amounts,
        [line.AccountBasedExpenseLineDetail.AccountRef.value ->> '$' for line in coalesce(p.Line, [])
         if line.AccountBasedExpenseLineDetail.AccountRef.value ->> '$' is not null] as expense_account_ids
    from parsed
),

final as (
    select
        tenant_id,
        entity_id as qbo_id,
        op,
        try_cast(p.SyncToken ->> '$' as integer) as sync_token,
        p.DocNumber ->> '$' as doc_number,
        try_cast(p.TxnDate ->> '$' as date) as txn_date,
        p.PaymentType ->> '$' as payment_type,
        p.AccountRef.value ->> '$' as account_id,
        p.AccountRef.name ->> '$' as account_name,
        coalesce(try_cast(p.Credit ->> '$' as boolean), false) as is_credit,
        json_money(p.TotalAmt) as total_amt,
        p.CurrencyRef.value ->> '$' as currency,
        case when list_count(line_amounts) = len(line_amounts)
            then cast(coalesce(list_sum(line_amounts), 0) as decimal(18, 2)) end as line_amount_total,
        cast(len(coalesce(p.Line, [])) as integer) as line_count,
        expense_account_ids,
        coalesce(p.PrivateNote ->> '$', '') like '%Voided%' as is_voided,
        p.PrivateNote ->> '$' as private_note,
        nullif(regexp_extract(coalesce(p.PrivateNote ->> '$', ''),
                              'Ramp txn ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})', 1),
               '') as ramp_transaction_id,
        try_cast(p.MetaData.CreateTime ->> '$' as timestamptz) as created_at,
        try_cast(p.MetaData.LastUpdatedTime ->> '$' as timestamptz) as updated_at,
        observed_at as last_synced_at,
        source as sync_source,
        seq as log_seq,
        payload_hash
    from lines
)

select * from final
