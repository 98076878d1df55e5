-- Voided documents that still carry an amount: QBO zeroes a voided document.
with documents as (
    select * from mirror.qbo_payments
),

final as (
    select tenant_id, qbo_id, total_amt
    from documents
    where is_voided and total_amt <> 0
)

select * from final
