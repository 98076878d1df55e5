-- Every logged version of every Stripe customer, one row per log row, with typed columns.
-- Money is what Stripe sends: a JSON integer in the currency's minor units (cents), typed BIGINT; a string, a
-- fraction or an absent amount is null here, never rounded; the mirror contract quarantines it.
-- Epoch seconds become timestamptz (UTC); one that is not a JSON integer, or out of range, is null.
-- A deleted customer is logged with op = 'deleted' and the payload {id, object, deleted: true}: its row keeps
-- the id and the flag, every other column null (the mirror drops it, the history closes the customer).
-- config: materialized=view
-- config: key=stripe_id
-- config: derive=mirror,history

with log as (
    select * from raw.stripe_customers
),

-- Each payload is parsed once, into `p`: a struct of the fields read below (every `payload ->> '$.X'`
-- would parse the whole document again). Fields stay JSON values, so each keeps its JSON type and its
-- text: `p.X ->> '$'` reads that small value exactly as `payload ->> '$.X'` read it (a missing or null
-- field, or one under a parent that is not an object, is null; key case matters).
parsed as (
    select
        *,
        json_transform(payload, '{
            "name": "JSON", "email": "JSON", "description": "JSON", "phone": "JSON",
            "balance": "JSON", "currency": "JSON", "delinquent": "JSON", "deleted": "JSON",
            "livemode": "JSON", "metadata": "JSON", "created": "JSON"
        }') as p
    from log
),

final as (
    select
        tenant_id,
        entity_id as stripe_id,
        op,
        op = 'deleted' or coalesce(try_cast(p.deleted ->> '$' as boolean), false) as deleted,
        p.name ->> '$' as name,
        p.email ->> '$' as email,
        p.description ->> '$' as description,
        p.phone ->> '$' as phone,
        json_int(p.balance)
            as balance,
        p.currency ->> '$' as currency,
        try_cast(p.delinquent ->> '$' as boolean) as delinquent,
        try_cast(p.livemode ->> '$' as boolean) as livemode,
        p.metadata as metadata,
        p.metadata ->> '$.qbo_customer_id' as qbo_customer_id,
        json_epoch(p.created) as created,
        observed_at as last_synced_at,
        source as sync_source,
        seq as log_seq,
        payload_hash
    from parsed
)

select * from final
