-- Monthly spend per vendor and currency, per tenant: the bills dated in each month, voided ones excluded.
-- config: materialized=tenant_table

with bills as (
    select * from mirror.qbo_bills
),

final as (
    select
        tenant_id,
        cast(date_trunc('month', txn_date) as date) as month,
        vendor_id,
        vendor_name,
        currency,
        count(*) as bills,
        cast(sum(total_amt) as decimal(18, 2)) as total_amt
    from bills
    where not is_voided
    group by tenant_id, month, vendor_id, vendor_name, currency
)

select * from final
