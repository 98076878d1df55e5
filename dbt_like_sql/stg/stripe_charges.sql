-- Every logged version of every Stripe charge, one row per log row, with typed columns.
-- Money is what Stripe sends: a JSON integer in the currency's minor units (cents), typed BIGINT; a string, a
-- fraction or an absent amount is null here, never rounded; the mirror contract quarantines it.
-- Epoch seconds become timestamptz (UTC); one that is not a JSON integer, or out of range, is null.
-- qbo_payment_id is the QBO payment the charge was taken for, as its metadata names it (the cross-rail match).
-- config: materialized=view
-- config: key=stripe_id
-- config: derive=mirror,history

with log as (
    select * from raw.stripe_charges
),

-- Each payload is parsed once, into `p`: a struct of the fields read below (every `payload ->> '$.X'`
-- would parse the whole document again). Fields stay JSON values, so each keeps its JSON type and its
-- text: `p.X ->> '$'` reads that small value exactly as `payload ->> '$.X'` read it (a missing or null
-- field, or one under a parent that is not an object, is null; key case matters).
parsed as (
    select
        *,
        json_transform(payload, '{
            "amount": "JSON", "amount_captured": "JSON", "amount_refunded": "JSON", "currency": "JSON",
            "paid": "JSON", "captured": "JSON", "refunded": "JSON", "disputed": "JSON", "status": "JSON",
            "customer": "JSON", "balance_transaction": "JSON", "payment_intent": "JSON",
            "description": "JSON", "failure_code": "JSON", "failure_message": "JSON",
            "payment_method_details": {"type": "JSON"}, "livemode": "JSON", "metadata": "JSON", "created": "JSON"
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
        json_int(p.amount_captured) as amount_captured,
        json_int(p.amount_refunded) as amount_refunded,
        p.currency ->> '$' as currency,
        try_cast(p.paid ->> '$' as boolean) as paid,
        try_cast(p.captured ->> '$' as boolean) as captured,
        try_cast(p.refunded ->> '$' as boolean) as refunded,
        try_cast(p.disputed ->> '$' as boolean) as disputed,
        p.status ->> '$' as status,
        p.customer ->> '$' as customer_id,
        p.balance_transaction ->> '$' as balance_transaction_id,
        p.payment_intent ->> '$' as payment_intent_id,
        p.payment_method_details.type ->> '$' as payment_method_type,
        p.description ->> '$' as description,
        p.failure_code ->> '$' as failure_code,
        p.failure_message ->> '$' as failure_message,
        try_cast(p.livemode ->> '$' as boolean) as livemode,
        p.metadata as metadata,
        p.metadata ->> '$.qbo_payment_id' as qbo_payment_id,
        json_epoch(p.created) as created,
        observed_at as last_synced_at,
        source as sync_source,
        seq as log_seq,
        payload_hash
    from parsed
)

select * from final
