-- Every logged version of every Ramp card, one row per log row; terminated and never-activated cards (hidden by
-- Ramp's default list) are read on purpose, so a card leaving the list is logged as the state it reached.
-- config: materialized=view
-- config: key=card_id
-- config: derive=mirror,history

with log as (
    select * from raw.ramp_cards
),

parsed as (
    select
        *,
        json_transform(payload, '{
            "display_name": "JSON", "last_four": "JSON", "cardholder_id": "JSON", "cardholder_name": "JSON",
            "is_physical": "JSON", "state": "JSON", "spending_restrictions": "JSON"
        }') as p
    from log
),

final as (
    select
        tenant_id,
        entity_id as card_id,
        op,
        p.display_name ->> '$' as display_name,
        p.last_four ->> '$' as last_four,
        p.cardholder_id ->> '$' as cardholder_id,
        p.cardholder_name ->> '$' as cardholder_name,
        try_cast(p.is_physical ->> '$' as boolean) as is_physical,
        p.state ->> '$' as state,
        json_cents(p.spending_restrictions -> '$.amount') as limit_cents,
        p.spending_restrictions ->> '$.interval' as limit_interval,
        observed_at as last_synced_at,
        source as sync_source,
        seq as log_seq,
        payload_hash
    from parsed
)

select * from final
