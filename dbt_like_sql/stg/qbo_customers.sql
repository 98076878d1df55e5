-- Every logged version of every QBO customer, one row per log row, with typed columns.
-- Money is typed by json_money (lib/model_views.py): a JSON number with at most two decimals (USD);
-- a string, a third decimal or an absent amount is null here, never rounded; the mirror contract quarantines it.
-- config: materialized=view
-- config: key=qbo_id
-- config: derive=mirror,history

with log as (
    select * from raw.qbo_customers
),

-- Each payload is parsed once, into `p`: a struct of the fields read below (every `payload ->> '$.X'`
-- would parse the whole document again). Fields stay JSON values, so each keeps its JSON type and its
-- text: `p.X ->> '$'` reads that small value exactly as `payload ->> '$.X'` read it (a missing or null
-- field, or one under a parent that is not an object, is null; key case matters).
parsed as (
    select
        *,
        json_transform(payload, '{
            "SyncToken": "JSON", "DisplayName": "JSON", "CompanyName": "JSON", "GivenName": "JSON",
            "FamilyName": "JSON", "PrimaryEmailAddr": {"Address": "JSON"}, "Balance": "JSON", "Taxable": "JSON",
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
        p.DisplayName ->> '$' as display_name,
        p.CompanyName ->> '$' as company_name,
        p.GivenName ->> '$' as given_name,
        p.FamilyName ->> '$' as family_name,
        p.PrimaryEmailAddr.Address ->> '$' as email,
        json_money(p.Balance) as balance,
        coalesce(try_cast(p.Taxable ->> '$' as boolean), false) as is_taxable,
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
