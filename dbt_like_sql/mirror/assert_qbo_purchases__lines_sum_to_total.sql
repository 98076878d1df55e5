-- Purchases whose line amounts do not add up to TotalAmt (QBO requires they do).
with purchases as (
    select * from mirror.qbo_purchases
),

final as (
    select tenant_id, qbo_id, total_amt, line_amount_total
    from purchases
    where line_amount_total is distinct from total_amt
)

select * from final
