-- The instants a tenant's reconciliation is measured against, one row per tenant with a QBO clock: `as_of`, the
-- tenant's QBO clock at its last sync (what a tolerance has passed by), and `bank_since`, where the bank's history
-- starts: the first posting on a checking account, or its Plaid item's creation when that is earlier (`created_at`,
-- read from the log: no mirror column holds it); null without a bank. Nothing before `bank_since` can be missing
-- from the bank.
-- config: materialized=tenant_table

with clock as (
    select tenant_id, max(rail_now) as as_of from meta.sync_cursors where rail = 'qbo' group by tenant_id
),
checking as (
    select t.tenant_id, coalesce(t.datetime, cast(t.date as timestamptz)) as posted_at, a.item_id
    from mirror.plaid_transactions t
    join mirror.plaid_accounts a on a.tenant_id = t.tenant_id and a.account_id = t.account_id and a.subtype = 'checking'
    where not t.pending
),
bank as (
    select c.tenant_id, least(min(c.posted_at), min(try_cast(i.payload ->> '$.created_at' as timestamptz))) as since
    from checking c left join raw.plaid_items i on i.tenant_id = c.tenant_id and i.entity_id = c.item_id
    group by c.tenant_id
),

final as (
    select c.tenant_id, c.as_of, b.since as bank_since
    from clock c left join bank b using (tenant_id)
)

select * from final
