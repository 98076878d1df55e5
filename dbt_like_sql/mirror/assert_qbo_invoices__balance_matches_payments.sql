-- Invoices whose Balance is not TotalAmt minus what the live, unvoided customer payments linked to them applied.
with invoices as (
    select * from mirror.qbo_invoices
),

payments as (
    select tenant_id, log_seq from mirror.qbo_payments where not is_voided
),

payment_lines as (
    select payments.tenant_id, unnest(json_extract(log.payload, '$.Line[*]')) as line
    from payments
    inner join raw.qbo_payments as log on log.seq = payments.log_seq
),

applied as (
    select
        tenant_id,
        line ->> '$.LinkedTxn[0].TxnId' as invoice_id,
        sum(cast(line ->> '$.Amount' as decimal(18, 2))) as applied_amt
    from payment_lines
    where line ->> '$.LinkedTxn[0].TxnType' = 'Invoice'
    group by 1, 2
),

final as (
    select invoices.tenant_id, invoices.qbo_id, invoices.total_amt, invoices.balance, coalesce(applied.applied_amt, 0) as applied_amt
    from invoices
    left join applied on applied.tenant_id = invoices.tenant_id and applied.invoice_id = invoices.qbo_id
    where not invoices.is_voided and invoices.balance <> invoices.total_amt - coalesce(applied.applied_amt, 0)
)

select * from final
