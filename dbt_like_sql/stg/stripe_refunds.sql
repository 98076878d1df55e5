-- Every logged version of every Stripe refund, one row per log row, with typed columns.
-- Money is what Stripe sends: a JSON integer in the currency's minor units (cents), typed BIGINT; a string, a
-- fraction or an absent amount is null here, never rounded; the mirror contract quarantines it.
-- A refund's amount is positive: its balance transaction carries the negative movement.
-- Epoch seconds become timestamptz (UTC); one that is not a JSON integer, or out of range, is null.
-- config: materialized=view
-- config: key=stripe_id
-- config: derive=mirror,history

with log as (
    select * from raw.stripe_refunds
),

-- Each payload is parsed once, into `p`: a struct of the fields read below (every `payload ->> '$.X'`
-- would parse the whole document again). Fields stay JSON values, so each keeps its JSON type and its
-- text: `p.X ->> '$'` reads that small value exactly as `payload ->> '$.X'` read it (a missing or null
-- field, or one under a parent that is not an object, is null; key case matters).
parsed as (
    select
        *,
        json_transform(payload, '{
            "amount": "JSON", "currency": "JSON", "charge": "JSON", "payment_intent": "JSON",
            "balance_transaction": "JSON", "reason": "JSON", "status": "JSON", "failure_reason": "JSON",
            "metadata": "JSON", "created": "JSON"
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
        p.charge ->> '$' as charge_id,
        p.payment_intent ->> '$' as payment_intent_id,
        p.balance_transaction ->> '$' as balance_transaction_id,
        p.reason ->> '$' as reason,
        p.status ->> '$' as status,
        p.failure_reason ->> '$' as failure_reason,
        p.metadata as metadata,
        json_epoch(p.created) as created,
        observed_at as last_synced_at,
        source as sync_source,
        seq as log_seq,
        payload_hash
    from parsed
)

select * from final
