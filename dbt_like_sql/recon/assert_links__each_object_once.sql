-- Objects linked twice where the flow allows one: a booking, deposit or bank transaction matched to two objects of
-- the same flow, or an object matched twice where it moves once. Only matched and confirmed links count (candidates
-- for review compete on purpose); a Ramp statement batches many card transactions, a payout the charges it settled,
-- and one card transaction booked twice is a break (booking_duplicated), not an inconsistency.
with held as (
    select * from recon.links where status in ('matched', 'confirmed')
),
twice as (
    select tenant_id, flow, 'to' as side, to_rail as rail, to_type as entity_type, to_id as entity_id, count(*) as links
    from held where flow not in ('card_statement', 'charge_payout')
    group by all having count(*) > 1
    union all
    select tenant_id, flow, 'from', from_rail, from_type, from_id, count(*)
    from held where flow <> 'card_booking'
    group by all having count(*) > 1
),

final as (
    select * from twice
)

select * from final
