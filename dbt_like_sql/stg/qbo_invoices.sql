-- Every logged version of every QBO invoice, one row per log row, with typed columns.
-- Money is typed only when the payload holds a JSON number with at most two decimals (USD): a string,
-- a third decimal or an absent amount is null here, never rounded, and the mirror contract quarantines it.
-- config: materialized=view

with log as (
    select * from raw.qbo_invoices
),

lines as (
    select
        *,
        [
            case when json_type(line, '$.Amount') in ('UBIGINT', 'BIGINT', 'DOUBLE')
                and regexp_full_match(line ->> '$.Amount', '-?[0-9]{1,16}([.][0-9]{1,2})?')
                then cast(line ->> '$.Amount' as decimal(18, 2)) end
            for line in json_extract(payload, '$.Line[*]')
            if coalesce(line ->> '$.DetailType', '') <> 'SubTotalLineDetail'
        ] as line_amounts
    from log
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
        case when json_type(payload, '$.TotalAmt') in ('UBIGINT', 'BIGINT', 'DOUBLE')
            and regexp_full_match(payload ->> '$.TotalAmt', '-?[0-9]{1,16}([.][0-9]{1,2})?')
            then cast(payload ->> '$.TotalAmt' as decimal(18, 2)) end as total_amt,
        case when json_type(payload, '$.Balance') in ('UBIGINT', 'BIGINT', 'DOUBLE')
            and regexp_full_match(payload ->> '$.Balance', '-?[0-9]{1,16}([.][0-9]{1,2})?')
            then cast(payload ->> '$.Balance' as decimal(18, 2)) end as balance,
        payload ->> '$.CurrencyRef.value' as currency,
        case when list_count(line_amounts) = len(line_amounts)
            then cast(coalesce(list_sum(line_amounts), 0) as decimal(18, 2)) end as line_amount_total,
        cast(coalesce(json_array_length(payload, '$.Line'), 0) as integer) as line_count,
        coalesce(payload ->> '$.PrivateNote', '') like '%Voided%' as is_voided,
        payload ->> '$.PrivateNote' as private_note,
        try_cast(payload ->> '$.MetaData.CreateTime' as timestamptz) as created_at,
        try_cast(payload ->> '$.MetaData.LastUpdatedTime' as timestamptz) as updated_at,
        observed_at as last_synced_at,
        source as sync_source,
        seq as log_seq,
        payload_hash
    from lines
)

select * from final
