-- Every logged version of every Stripe balance transaction, one row per log row, with typed columns.
-- Money is what Stripe sends: a JSON integer in the currency's minor units (cents), typed BIGINT; a string, a
-- fraction or an absent amount is null here, never rounded; the mirror contract quarantines it.
-- amount is signed (a charge adds, a refund, dispute or payout withdraws), fee is what Stripe kept, net is
-- amount - fee; fee_details_total sums fee_details' amounts (null when one is not an integer).
-- Epoch seconds become timestamptz (UTC); one that is not a JSON integer, or out of range, is null.
-- source_id is the object that moved the balance (ch_, re_, dp_, po_...); payout_id is the payout that settled
-- it, where the payload names one.
-- config: materialized=view
-- config: key=stripe_id
-- config: derive=mirror,history

with log as (
    select * from raw.stripe_balance_transactions
),

-- Each payload is parsed once, into `p`: a struct of the fields read below (every `payload ->> '$.X'`
-- would parse the whole document again). Fields stay JSON values, so each keeps its JSON type and its
-- text: `p.X ->> '$'` reads that small value exactly as `payload ->> '$.X'` read it (a missing or null
-- field, or one under a parent that is not an object, is null; key case matters).
parsed as (
    select
        *,
        json_transform(payload, '{
            "amount": "JSON", "fee": "JSON", "net": "JSON", "currency": "JSON", "fee_details": "JSON",
            "type": "JSON", "reporting_category": "JSON", "status": "JSON", "source": "JSON", "payout": "JSON",
            "description": "JSON", "available_on": "JSON", "created": "JSON"
        }') as p
    from log
),

-- The fee lines' amounts, each typed like every amount (null unless a JSON integer).
fees as (
    select
        *,
        [json_int(detail -> '$.amount') for detail in coalesce(json_extract(p.fee_details, '$[*]'), [])] as fee_amounts
    from parsed
),

final as (
    select
        tenant_id,
        entity_id as stripe_id,
        op,
        json_int(p.amount)
            as amount,
        json_int(p.fee) as fee,
        json_int(p.net) as net,
        p.currency ->> '$' as currency,
        p.fee_details as fee_details,
        case when list_count(fee_amounts) = len(fee_amounts)
            then cast(coalesce(list_sum(fee_amounts), 0) as bigint) end as fee_details_total,
        p.type ->> '$' as type,
        p.reporting_category ->> '$' as reporting_category,
        p.status ->> '$' as status,
        p.source ->> '$' as source_id,
        p.payout ->> '$' as payout_id,
        p.description ->> '$' as description,
        json_epoch(p.available_on) as available_on,
        json_epoch(p.created) as created,
        observed_at as last_synced_at,
        source as sync_source,
        seq as log_seq,
        payload_hash
    from fees
)

select * from final
