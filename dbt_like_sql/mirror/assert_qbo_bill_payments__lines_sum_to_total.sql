-- Documents whose line amounts (subtotal lines excluded) do not add up to TotalAmt.
with documents as (
    select * from mirror.qbo_bill_payments
),

final as (
    select tenant_id, qbo_id, total_amt, line_amount_total
    from documents
    where line_amount_total is distinct from total_amt
)

select * from final
