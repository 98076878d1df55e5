-- Every logged version of every QBO invoice, one row per log row, with typed columns.
-- Money is typed by json_money (lib/model_views.py): a JSON number with at most two decimals (USD);
-- a string, a third decimal or an absent amount is null here, never rounded; the mirror contract quarantines it.
-- config: materialized=view
-- config: key=qbo_id
-- config: derive=mirror,history

with log as (
    select * from raw.qbo_invoices
),

-- Each payload is parsed once, into `p`: a struct of the fields read below (every `payload ->> '$.X'`
-- would parse the whole document again). Fields stay JSON values, so each keeps its JSON type and its
-- text: `p.X ->> '$'` reads that small value exactly as `payload ->> '$.X'` read it (a missing or null
-- field, or one under a parent that is not an object, is null; key case matters).
parsed as (
    select
        *,
        json_transform(payload, '{
            "SyncToken": "JSON", "DocNumber": "JSON", "TxnDate": "JSON", "DueDate": "JSON",
            "CustomerRef": {"value": "JSON", "name": "JSON"}, "ARAccountRef": {"value": "JSON"},
            "TotalAmt": "JSON", "Balance": "JSON", "CurrencyRef": {"value": "JSON"}, "PrivateNote": "JSON",
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
        p.DocNumber ->> '$' as doc_number,
        try_cast(p.TxnDate ->> '$' as date) as txn_date,
        try_cast(p.DueDate ->> '$' as date) as due_date,
        p.CustomerRef.value ->> '$' as customer_id,
        p.CustomerRef.name ->> '$' as customer_name,
        p.ARAccountRef.value ->> '$' as ar_account_id,
        json_money(p.TotalAmt) as total_amt,
        json_money(p.Balance) as balance,
        p.CurrencyRef.value ->> '$' as currency,
        case when list_count(line_amounts) = len(line_amounts)
            then cast(coalesce(list_sum(line_amounts), 0) as decimal(18, 2)) end as line_amount_total,
        cast(len(coalesce(p.Line, [])) as integer) as line_count,
        coalesce(p.PrivateNote ->> '$', '') like '%Voided%' as is_voided,
        p.PrivateNote ->> '$' as private_note,
        try_cast(p.MetaData.CreateTime ->> '$' as timestamptz) as created_at,
        try_cast(p.MetaData.LastUpdatedTime ->> '$' as timestamptz) as updated_at,
        observed_at as last_synced_at,
        source as sync_source,
        seq as log_seq,
        payload_hash
    from lines
)

select * from final
