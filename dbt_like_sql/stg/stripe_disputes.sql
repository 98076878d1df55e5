-- Every logged version of every Stripe dispute, one row per log row, with typed columns.
-- Money is what Stripe sends: a JSON integer in the currency's minor units (cents), typed BIGINT; a string, a
-- fraction or an absent amount is null here, never rounded; the mirror contract quarantines it.
-- Epoch seconds become timestamptz (UTC); one that is not a JSON integer, or out of range, is null.
-- balance_transaction_ids: the ids of the balance transactions the dispute moved (withdrawal, reinstatement).
-- config: materialized=view
-- config: key=stripe_id
-- config: derive=mirror,history

with log as (
    select * from raw.stripe_disputes
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
            "balance_transactions": [{"id": "JSON"}], "reason": "JSON", "status": "JSON",
            "is_charge_refundable": "JSON", "evidence_details": {"due_by": "JSON"},
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
        [txn.id ->> '$' for txn in coalesce(p.balance_transactions, [])] as balance_transaction_ids,
        p.reason ->> '$' as reason,
        p.status ->> '$' as status,
        try_cast(p.is_charge_refundable ->> '$' as boolean) as is_charge_refundable,
        json_epoch(p.evidence_details.due_by) as evidence_due_by,
        p.metadata as metadata,
        json_epoch(p.created) as created,
        observed_at as last_synced_at,
        source as sync_source,
        seq as log_seq,
        payload_hash
    from parsed
)

select * from final
