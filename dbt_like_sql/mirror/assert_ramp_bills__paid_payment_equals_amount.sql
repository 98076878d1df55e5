-- Paid bills whose payment is not the bill's amount (or says no amount): bill pay pays a bill whole.
with bills as (
    select * from mirror.ramp_bills
),

final as (
    select tenant_id, bill_id, amount_cents, payment_amount_cents
    from bills
    where status = 'PAID' and payment_amount_cents is distinct from amount_cents
)

select * from final
