-- Cash through the business's Checking account per tenant and day, as three windows show it: the bank (Plaid's
-- posted transactions), the books (QBO deposits and payments into Checking, bill payments out of it) and the rails
-- that move money there (Stripe payouts arriving, Ramp bill payments leaving). Minor units, money in positive.
-- `bank_minus_books_minor` is the day's difference: timing (a check booked today clears days later), the bank's own
-- traffic (fees, interest, transfers, card payments) and the breaks of recon.breaks make it up.
-- config: materialized=tenant_table

with checking as (  -- the books' Checking account
    select tenant_id, qbo_id from mirror.qbo_accounts where account_type = 'Bank' and account_sub_type = 'Checking'
),
bank as (
    select t.tenant_id, t.date as day, -t.amount_cents as cents
    from mirror.plaid_transactions t
    join mirror.plaid_accounts a on a.tenant_id = t.tenant_id and a.account_id = t.account_id and a.subtype = 'checking'
    where not t.pending
),
books as (
    select d.tenant_id, d.txn_date as day, cast(round(d.total_amt * 100) as bigint) as cents
    from mirror.qbo_deposits d join checking c on c.tenant_id = d.tenant_id and c.qbo_id = d.deposit_account_id
    where not d.is_voided
    union all
    select p.tenant_id, p.txn_date, cast(round(p.total_amt * 100) as bigint)
    from mirror.qbo_payments p join checking c on c.tenant_id = p.tenant_id and c.qbo_id = p.deposit_account_id
    where not p.is_voided
    union all
    select b.tenant_id, b.txn_date, -cast(round(b.total_amt * 100) as bigint)
    from mirror.qbo_bill_payments b join checking c on c.tenant_id = b.tenant_id and c.qbo_id = b.bank_account_id
    where not b.is_voided
),
rails as (
    select tenant_id, arrival_date as day, amount as cents from mirror.stripe_payouts where status = 'paid'
    union all
    select tenant_id, cast(payment_date as date), -payment_amount_cents
    from mirror.ramp_bills where status = 'PAID' and payment_date is not null
),
flows as (
    select tenant_id, day, 'bank' as side, cents from bank
    union all
    select tenant_id, day, 'books', cents from books
    union all
    select tenant_id, day, 'rails', cents from rails
),

final as (
    select
        tenant_id,
        day,
        cast(coalesce(sum(cents) filter (side = 'bank' and cents > 0), 0) as bigint) as bank_in_minor,
        cast(coalesce(-sum(cents) filter (side = 'bank' and cents < 0), 0) as bigint) as bank_out_minor,
        cast(coalesce(sum(cents) filter (side = 'books' and cents > 0), 0) as bigint) as books_in_minor,
        cast(coalesce(-sum(cents) filter (side = 'books' and cents < 0), 0) as bigint) as books_out_minor,
        cast(coalesce(sum(cents) filter (side = 'rails' and cents > 0), 0) as bigint) as rails_in_minor,
        cast(coalesce(-sum(cents) filter (side = 'rails' and cents < 0), 0) as bigint) as rails_out_minor,
        cast(coalesce(sum(cents) filter (side = 'bank'), 0) - coalesce(sum(cents) filter (side = 'books'), 0)
            as bigint) as bank_minus_books_minor
    from flows
    group by tenant_id, day
)

select * from final
