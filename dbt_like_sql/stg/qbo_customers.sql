-- Every logged version of every QBO customer, one row per log row, with typed columns.
-- Money is typed only when the payload holds a JSON number with at most two decimals (USD): a string,
-- a third decimal or an absent amount is null here, never rounded, and the mirror contract quarantines it.
-- config: materialized=view

with log as (
    select * from raw.qbo_customers
),

final as (
    select
        tenant_id,
        entity_id as qbo_id,
        op,
        try_cast(payload ->> '$.SyncToken' as integer) as sync_token,
        payload ->> '$.DisplayName' as display_name,
        payload ->> '$.CompanyName' as company_name,
        payload ->> '$.GivenName' as given_name,
        payload ->> '$.FamilyName' as family_name,
        payload ->> '$.PrimaryEmailAddr.Address' as email,
        case when json_type(payload, '$.Balance') in ('UBIGINT', 'BIGINT', 'DOUBLE')
            and regexp_full_match(payload ->> '$.Balance', '-?[0-9]{1,16}([.][0-9]{1,2})?')
            then cast(payload ->> '$.Balance' as decimal(18, 2)) end as balance,
        coalesce(try_cast(payload ->> '$.Taxable' as boolean), false) as is_taxable,
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
