-- Every logged version of every QBO account, one row per log row, with typed columns.
-- Money is typed only when the payload holds a JSON number with at most two decimals (USD): a string,
-- a third decimal or an absent amount is null here, never rounded, and the mirror contract quarantines it.
-- config: materialized=view

with log as (
    select * from raw.qbo_accounts
),

final as (
    select
        tenant_id,
        entity_id as qbo_id,
        op,
        try_cast(payload ->> '$.SyncToken' as integer) as sync_token,
        payload ->> '$.Name' as name,
        payload ->> '$.FullyQualifiedName' as fully_qualified_name,
        payload ->> '$.AccountType' as account_type,
        payload ->> '$.AccountSubType' as account_sub_type,
        payload ->> '$.Classification' as classification,
        case when json_type(payload, '$.CurrentBalance') in ('UBIGINT', 'BIGINT', 'DOUBLE')
            and regexp_full_match(payload ->> '$.CurrentBalance', '-?[0-9]{1,16}([.][0-9]{1,2})?')
            then cast(payload ->> '$.CurrentBalance' as decimal(18, 2)) end as current_balance,
        coalesce(try_cast(payload ->> '$.SubAccount' as boolean), false) as is_sub_account,
        payload ->> '$.CurrencyRef.value' as currency,
        coalesce(try_cast(payload ->> '$.Active' as boolean), true) as is_active,
        try_cast(payload ->> '$.MetaData.CreateTime' as timestamptz) as created_at,
        try_cast(payload ->> '$.MetaData.LastUpdatedTime' as timestamptz) as updated_at,
        observed_at as last_synced_at,
        source as sync_source,
        seq as log_seq,
        payload_hash
    from log
)

select * from final
