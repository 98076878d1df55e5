-- Every logged version of every QBO customer payment, one row per log row, with typed columns.
-- Money is typed by json_money (lib/model_views.py): a JSON number with at most two decimals (USD);
-- a string, a third decimal or an absent amount is null here, never rounded; the mirror contract quarantines it.
-- config: materialized=view
-- config: key=qbo_id
-- config: derive=mirror,history

with log as (
    select * from raw.qbo_payments
),

-- Each payload is parsed once, into `p`: a struct of the fields read below (every `payload ->> '$.X'`
-- would parse the whole document again). Fields stay JSON values, so each keeps its JSON type and its
-- text: `p.X ->> '$'` reads that small value exactly as `payload ->> '$.X'` read it (a missing or null
-- field, or one under a parent that is not an object, is null; key case matters).
-- A line's LinkedTxn stays a list of JSON values: `json_exists` keeps a TxnId that is JSON null and skips a
-- missing one, as the path '$.Line[*].LinkedTxn[*].TxnId' does.
parsed as (
    select
        *,
        json_transform(payload, '{
            "SyncToken": "JSON", "TxnDate": "JSON",
            "CustomerRef": {"value": "JSON", "name": "JSON"}, "DepositToAccountRef": {"value": "JSON"},
            "TotalAmt": "JSON", "UnappliedAmt": "JSON", "CurrencyRef": {"value": "JSON"}, "PrivateNote": "JSON",
            "Line": [{"Amount": "JSON", "DetailType": "JSON", "LinkedTxn": "JSON[]"}],
            "MetaData": {"CreateTime": "JSON", "LastUpdatedTime": "JSON"}
        }') as p
    from log
),

lines as (
    select
        *,
        json_line_amounts(p.Line) as line_amounts,
        json_linked_txn_ids(p.Line) as linked_txn_ids
    from parsed
),

final as (
    select
        tenant_id,
        entity_id as qbo_id,
        op,
        try_cast(p.SyncToken ->> '$' as integer) as sync_token,
        try_cast(p.TxnDate ->> '$' as date) as txn_date,
        p.CustomerRef.value ->> '$' as customer_id,
        p.CustomerRef.name ->> '$' as customer_name,
        p.DepositToAccountRef.value ->> '$' as deposit_account_id,
        json_money(p.TotalAmt) as total_amt,
        json_money(p.UnappliedAmt) as unapplied_amt,
        p.CurrencyRef.value ->> '$' as currency,
        case when list_count(line_amounts) = len(line_amounts)
            then cast(coalesce(list_sum(line_amounts), 0) as decimal(18, 2)) end as line_amount_total,
        linked_txn_ids as linked_invoice_ids,
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
