-- Open receivables per customer in aging buckets (days past due), per tenant, as of the rail's date at the last sync.
-- config: materialized=tenant_table

with invoices as (
    select * from mirror.qbo_invoices
),

as_of as (
    select tenant_id, cast(max(rail_now) as date) as as_of_date
    from meta.sync_cursors
    where rail = 'qbo' and entity_type = 'Invoice'
    group by tenant_id
),

open_invoices as (
    select
        invoices.tenant_id,
        as_of.as_of_date,
        invoices.customer_id,
        invoices.customer_name,
        invoices.currency,
        invoices.balance,
        date_diff('day', coalesce(invoices.due_date, invoices.txn_date), as_of.as_of_date) as days_past_due
    from invoices
    inner join as_of on invoices.tenant_id = as_of.tenant_id
    where invoices.balance > 0 and not invoices.is_voided
),

final as (
    select
        tenant_id,
        as_of_date,
        customer_id,
        customer_name,
        currency,
        count(*) as open_invoices,
        cast(coalesce(sum(balance) filter (days_past_due <= 0), 0) as decimal(18, 2)) as current_amt,
        cast(coalesce(sum(balance) filter (days_past_due between 1 and 30), 0) as decimal(18, 2)) as days_1_30,
        cast(coalesce(sum(balance) filter (days_past_due between 31 and 60), 0) as decimal(18, 2)) as days_31_60,
        cast(coalesce(sum(balance) filter (days_past_due between 61 and 90), 0) as decimal(18, 2)) as days_61_90,
        cast(coalesce(sum(balance) filter (days_past_due > 90), 0) as decimal(18, 2)) as days_over_90,
        cast(sum(balance) as decimal(18, 2)) as total_open
    from open_invoices
    group by tenant_id, as_of_date, customer_id, customer_name, currency
)

select * from final
