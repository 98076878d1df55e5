-- Bills whose Balance is not TotalAmt minus what the live, unvoided bill payments linked to them applied.
with bills as (
    select * from mirror.qbo_bills
),

payments as (
    select tenant_id, log_seq from mirror.qbo_bill_payments where not is_voided
),

payment_lines as (
    select payments.tenant_id, unnest(json_extract(log.payload, '$.Line[*]')) as line
    from payments
    inner join raw.qbo_bill_payments as log on log.seq = payments.log_seq
),

applied as (
    select
        tenant_id,
        line ->> '$.LinkedTxn[0].TxnId' as bill_id,
        sum(cast(line ->> '$.Amount' as decimal(18, 2))) as applied_amt
    from payment_lines
    where line ->> '$.LinkedTxn[0].TxnType' = 'Bill'
    group by 1, 2
),

final as (
    select bills.tenant_id, bills.qbo_id, bills.total_amt, bills.balance, coalesce(applied.applied_amt, 0) as applied_amt
    from bills
    left join applied on applied.tenant_id = bills.tenant_id and applied.bill_id = bills.qbo_id
    where not bills.is_voided and bills.balance <> bills.total_amt - coalesce(applied.applied_amt, 0)
)

select * from final
