-- Every logged version of every QBO invoice, one row per log row, with typed columns.
-- config: materialized=view

with log as (
    select * from raw.qbo_invoices
),

final as (
    select
        tenant_id,
        entity_id as qbo_id,
        op,
        try_cast(payload ->> '$.SyncToken' as integer) as sync_token,
        payload ->> '$.DocNumber' as doc_number,
        try_cast(payload ->> '$.TxnDate' as date) as txn_date,
        try_cast(payload ->> '$.DueDate' as date) as due_date,
        payload ->> '$.CustomerRef.value' as customer_id,
        payload ->> '$.CustomerRef.name' as customer_name,
        payload ->> '$.ARAccountRef.value' as ar_account_id,
        try_cast(payload ->> '$.TotalAmt' as decimal(18, 2)) as total_amt,
        try_cast(payload ->> '$.Balance' as decimal(18, 2)) as balance,
        payload ->> '$.CurrencyRef.value' as currency,
        cast(coalesce(list_sum([
            cast(line ->> '$.Amount' as decimal(18, 2))
            for line in json_extract(payload, '$.Line[*]')
            if coalesce(line ->> '$.DetailType', '') <> 'SubTotalLineDetail'
        ]), 0) as decimal(18, 2)) as line_amount_total,
        cast(coalesce(json_array_length(payload, '$.Line'), 0) as integer) as line_count,
        coalesce(payload ->> '$.PrivateNote', '') like '%Voided%' as is_voided,
        payload ->> '$.PrivateNote' as private_note,
        try_cast(payload ->> '$.MetaData.CreateTime' as timestamptz) as created_at,
        try_cast(payload ->> '$.MetaData.LastUpdatedTime' as timestamptz) as updated_at,
        observed_at as last_synced_at,
        source as sync_source,
        seq as log_seq,
        payload_hash
    from log
)

select * from final
