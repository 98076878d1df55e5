-- Every logged version of every QBO account, one row per log row, with typed columns.
-- Money is typed by json_money (lib/model_views.py): a JSON number with at most two decimals (USD);
-- a string, a third decimal or an absent amount is null here, never rounded; the mirror contract quarantines it.
-- config: materialized=view
-- config: key=qbo_id
-- config: derive=mirror,history

with log as (
    select * from raw.qbo_accounts
),

-- Each payload is parsed once, into `p`: a struct of the fields read below (every `payload ->> '$.X'`
-- would parse the whole document again). Fields stay JSON values, so each keeps its JSON type and its
-- text: `p.X ->> '$'` reads that small value exactly as `payload ->> '$.X'` read it (a missing or null
-- field, or one under a parent that is not an object, is null; key case matters).
parsed as (
    select
        *,
        json_transform(payload, '{
            "SyncToken": "JSON", "Name": "JSON", "FullyQualifiedName": "JSON", "AccountType": "JSON",
            "AccountSubType": "JSON", "Classification": "JSON", "CurrentBalance": "JSON", "SubAccount": "JSON",
            "CurrencyRef": {"value": "JSON"}, "Active": "JSON",
            "MetaData": {"CreateTime": "JSON", "LastUpdatedTime": "JSON"}
        }') as p
    from log
),

final as (
    select
        tenant_id,
        entity_id as qbo_id,
        op,
        try_cast(p.SyncToken ->> '$' as integer) as sync_token,
        p.Name ->> '$' as name,
        p.FullyQualifiedName ->> '$' as fully_qualified_name,
        p.AccountType ->> '$' as account_type,
        p.AccountSubType ->> '$' as account_sub_type,
        p.Classification ->> '$' as classification,
        json_money(p.CurrentBalance) as current_balance,
        coalesce(try_cast(p.SubAccount ->> '$' as boolean), false) as is_sub_account,
        p.CurrencyRef.value ->> '$' as currency,
        coalesce(try_cast(p.Active ->> '$' as boolean), true) as is_active,
        try_cast(p.MetaData.CreateTime ->> '$' as timestamptz) as created_at,
        try_cast(p.MetaData.LastUpdatedTime ->> '$' as timestamptz) as updated_at,
        observed_at as last_synced_at,
        source as sync_source,
        seq as log_seq,
        payload_hash
    from parsed
)

select * from final
