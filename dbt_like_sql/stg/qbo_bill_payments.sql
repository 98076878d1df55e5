-- Every logged version of every QBO bill payment, one row per log row, with typed columns.
-- config: materialized=view

with log as (
    select * from raw.qbo_bill_payments
),

final as (
    select
        tenant_id,
        entity_id as qbo_id,
        op,
        try_cast(payload ->> '$.SyncToken' as integer) as sync_token,
        payload ->> '$.DocNumber' as doc_number,
        try_cast(payload ->> '$.TxnDate' as date) as txn_date,
        payload ->> '$.VendorRef.value' as vendor_id,
        payload ->> '$.VendorRef.name' as vendor_name,
        payload ->> '$.PayType' as pay_type,
        payload ->> '$.CheckPayment.BankAccountRef.value' as bank_account_id,
        try_cast(payload ->> '$.TotalAmt' as decimal(18, 2)) as total_amt,
        payload ->> '$.CurrencyRef.value' as currency,
        cast(coalesce(list_sum([
            cast(line ->> '$.Amount' as decimal(18, 2))
            for line in json_extract(payload, '$.Line[*]')
            if coalesce(line ->> '$.DetailType', '') <> 'SubTotalLineDetail'
        ]), 0) as decimal(18, 2)) as line_amount_total,
        json_extract_string(payload, '$.Line[*].LinkedTxn[*].TxnId') as linked_bill_ids,
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
