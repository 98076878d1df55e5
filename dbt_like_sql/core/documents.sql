-- The documents money settles, per tenant, from every rail that issues them: QBO bills and invoices, Ramp bills and
-- card statements. Minor units, upper-case currency; `open_minor` is what is still to pay (a statement's is its
-- charges less its payments); `counterparty` as the rail names it; `log_seq` the mirror row's provenance.
-- config: materialized=tenant_table

with documents as (
    select tenant_id, 'qbo' as rail, 'Bill' as entity_type, qbo_id as entity_id, 'payable' as direction, doc_number,
        vendor_name as counterparty, txn_date as issued_on, due_date as due_on,
        cast(round(total_amt * 100) as bigint) as amount_minor, cast(round(balance * 100) as bigint) as open_minor,
        upper(currency) as currency, log_seq
    from mirror.qbo_bills where not is_voided
    union all
    select tenant_id, 'qbo', 'Invoice', qbo_id, 'receivable', doc_number, customer_name, txn_date, due_date,
        cast(round(total_amt * 100) as bigint), cast(round(balance * 100) as bigint), upper(currency), log_seq
    from mirror.qbo_invoices where not is_voided
    union all
    select tenant_id, 'ramp', 'bill', bill_id, 'payable', invoice_number, vendor_name, cast(issued_at as date),
        cast(due_at as date), amount_cents, case when status = 'PAID' then 0 else amount_cents end,
        upper(currency_code), log_seq
    from mirror.ramp_bills where archived_at is null
    union all
    select tenant_id, 'ramp', 'statement', statement_id, 'payable', null, 'Ramp', cast(end_date as date), null,
        charges_cents, greatest(charges_cents - payments_cents, 0), upper(currency_code), log_seq
    from mirror.ramp_statements
),

final as (
    select * from documents
)

select * from final
