-- Every logged version of every QBO customer payment, one row per log row, with typed columns.
-- Money is typed only when the payload holds a JSON number with at most two decimals (USD): a string,
-- a third decimal or an absent amount is null here, never rounded, and the mirror contract quarantines it.
-- config: materialized=view

with log as (
    select * from raw.qbo_payments
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
        try_cast(payload ->> '$.TxnDate' as date) as txn_date,
        payload ->> '$.CustomerRef.value' as customer_id,
        payload ->> '$.CustomerRef.name' as customer_name,
        payload ->> '$.DepositToAccountRef.value' as deposit_account_id,
        case when json_type(payload, '$.TotalAmt') in ('UBIGINT', 'BIGINT', 'DOUBLE')
            and regexp_full_match(payload ->> '$.TotalAmt', '-?[0-9]{1,16}([.][0-9]{1,2})?')
            then cast(payload ->> '$.TotalAmt' as decimal(18, 2)) end as total_amt,
        case when json_type(payload, '$.UnappliedAmt') in ('UBIGINT', 'BIGINT', 'DOUBLE')
            and regexp_full_match(payload ->> '$.UnappliedAmt', '-?[0-9]{1,16}([.][0-9]{1,2})?')
            then cast(payload ->> '$.UnappliedAmt' as decimal(18, 2)) end as unapplied_amt,
        payload ->> '$.CurrencyRef.value' as currency,
        case when list_count(line_amounts) = len(line_amounts)
            then cast(coalesce(list_sum(line_amounts), 0) as decimal(18, 2)) end as line_amount_total,
        json_extract_string(payload, '$.Line[*].LinkedTxn[*].TxnId') as linked_invoice_ids,
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
