-- Every logged composition of a Stripe payout, one row per log row: the balance transactions the payout settled, as
-- `/v1/balance_transactions?payout=po_...` listed them once it was paid and reconciled. stripe_id is the payout's id,
-- currency and created the payout's. balance_transactions: one struct per transaction, the payout's own (type `payout`)
-- among them, in Stripe's order; money is what Stripe sends, a JSON integer in minor units typed BIGINT, anything
-- else null. settled_net sums the other transactions' nets (what the payout paid out) and payout_net is the payout's
-- own (its negative, null unless there is exactly one): a whole composition has settled_net = -payout_net. A sum is
-- null when a net in it is.
-- config: materialized=view
-- config: key=stripe_id
-- config: derive=mirror,history

with log as (
    select * from raw.stripe_payout_compositions
),

-- Parsed once, into `p` (as the other Stripe models): fields stay JSON values, typed below.
parsed as (
    select
        *,
        json_transform(payload, '{
            "balance_transactions": [{"id": "JSON", "type": "JSON", "source": "JSON", "amount": "JSON",
                                      "fee": "JSON", "net": "JSON"}],
            "currency": "JSON", "created": "JSON"
        }') as p
    from log
),

typed as (
    select
        *,
        [{'balance_transaction_id': t.id ->> '$', 'type': t.type ->> '$', 'source_id': t.source ->> '$',
          'amount': json_int(t.amount), 'fee': json_int(t.fee), 'net': json_int(t.net)}
         for t in coalesce(p.balance_transactions, [])] as balance_transactions
    from parsed
),

split as (
    select
        *,
        [t.net for t in balance_transactions if t.type is distinct from 'payout'] as settled_nets,
        [t.net for t in balance_transactions if t.type = 'payout'] as payout_nets
    from typed
),

final as (
    select
        tenant_id,
        entity_id as stripe_id,
        op,
        p.currency ->> '$' as currency,
        balance_transactions,
        case when list_count(settled_nets) = len(settled_nets)
            then cast(coalesce(list_sum(settled_nets), 0) as bigint) end as settled_net,
        case when len(payout_nets) = 1 then payout_nets[1] end as payout_net,
        json_epoch(p.created) as created,
        observed_at as last_synced_at,
        source as sync_source,
        seq as log_seq,
        payload_hash
    from split
)

select * from final
