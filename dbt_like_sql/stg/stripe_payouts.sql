-- Every logged version of every Stripe payout, one row per log row, with typed columns.
-- Money is what Stripe sends: a JSON integer in the currency's minor units (cents), typed BIGINT; a string, a
-- fraction or an absent amount is null here, never rounded; the mirror contract quarantines it.
-- A payout's amount is positive: its balance transaction carries the negative movement.
-- Epoch seconds become timestamptz (UTC); one that is not a JSON integer, or out of range, is null.
-- arrival_date is the UTC date of the epoch Stripe gives (midnight UTC of the day the bank should have it).
-- config: materialized=view
-- config: key=stripe_id
-- config: derive=mirror,history

with log as (
    select * from raw.stripe_payouts
),

-- Each payload is parsed once, into `p`: a struct of the fields read below (every `payload ->> '$.X'`
-- would parse the whole document again). Fields stay JSON values, so each keeps its JSON type and its
-- text: `p.X ->> '$'` reads that small value exactly as `payload ->> '$.X'` read it (a missing or null
-- field, or one under a parent that is not an object, is null; key case matters).
parsed as (
    select
        *,
        json_transform(payload, '{
            "amount": "JSON", "currency": "JSON", "arrival_date": "JSON", "status": "JSON", "automatic": "JSON",
            "method": "JSON", "type": "JSON", "source_type": "JSON", "balance_transaction": "JSON",
            "destination": "JSON", "reconciliation_status": "JSON", "description": "JSON",
            "failure_code": "JSON", "metadata": "JSON", "created": "JSON"
        }') as p
    from log
),

final as (
    select
        tenant_id,
        entity_id as stripe_id,
        op,
        json_int(p.amount)
            as amount,
        p.currency ->> '$' as currency,
        try(cast(timezone('UTC', to_timestamp(json_int(p.arrival_date))) as date)) as arrival_date,
        p.status ->> '$' as status,
        try_cast(p.automatic ->> '$' as boolean) as automatic,
        p.method ->> '$' as method,
        p.type ->> '$' as type,
        p.source_type ->> '$' as source_type,
        p.balance_transaction ->> '$' as balance_transaction_id,
        p.destination ->> '$' as destination_id,
        p.reconciliation_status ->> '$' as reconciliation_status,
        p.description ->> '$' as description,
        p.failure_code ->> '$' as failure_code,
        p.metadata as metadata,
        json_epoch(p.created) as created,
        observed_at as last_synced_at,
        source as sync_source,
        seq as log_seq,
        payload_hash
    from parsed
)

select * from final
