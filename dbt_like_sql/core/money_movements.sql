-- Every movement of the business's money that a rail shows, per tenant, in one shape: integer minor units and an
-- upper-case currency, signed from the business's side (money in positive), the account it moved through, the
-- counterparty as the rail names it, and the log version it comes from (`log_seq`, the mirror row's provenance).
-- The same money appears once per rail that shows it (a payout: Stripe's balance out, the bank in, the books'
-- deposit); recon.links pairs them.
-- config: materialized=tenant_table

with books as (  -- the books' movements through a bank or clearing account, named by the account
    select tenant_id, 'Payment' as entity_type, qbo_id, created_at, total_amt, currency,
        deposit_account_id as account_id, customer_name as counterparty, log_seq
    from mirror.qbo_payments where not is_voided
    union all
    select tenant_id, 'Deposit', qbo_id, created_at, total_amt, currency, deposit_account_id, private_note, log_seq
    from mirror.qbo_deposits where not is_voided
    union all
    select tenant_id, 'BillPayment', qbo_id, created_at, -total_amt, currency, bank_account_id, vendor_name, log_seq
    from mirror.qbo_bill_payments where not is_voided
),
movements as (
    select t.tenant_id, 'plaid' as rail, 'transaction' as entity_type, t.transaction_id as entity_id,
        coalesce(t.datetime, cast(t.date as timestamptz)) as occurred_at, -t.amount_cents as amount_minor,
        upper(t.iso_currency_code) as currency, 'bank ' || a.subtype as account,
        coalesce(t.merchant_name, t.name) as counterparty, t.log_seq
    from mirror.plaid_transactions t
    join mirror.plaid_accounts a on a.tenant_id = t.tenant_id and a.account_id = t.account_id
    where not t.pending
    union all
    select tenant_id, 'stripe', 'charge', stripe_id, created, amount_captured - amount_refunded, upper(currency),
        'stripe balance', description, log_seq
    from mirror.stripe_charges where paid and captured
    union all
    select tenant_id, 'stripe', 'payout', stripe_id, cast(arrival_date as timestamptz), -amount, upper(currency),
        'stripe balance', 'the business''s bank', log_seq
    from mirror.stripe_payouts where status = 'paid'
    union all
    select tenant_id, 'ramp', 'transaction', transaction_id, user_transaction_time, -amount_cents,
        upper(currency_code), 'ramp card', merchant_name, log_seq
    from mirror.ramp_transactions where state = 'CLEARED'
    union all
    select tenant_id, 'ramp', 'bill', bill_id, paid_at, -coalesce(payment_amount_cents, amount_cents),
        upper(currency_code), 'ramp bill pay', vendor_name, log_seq
    from mirror.ramp_bills where status = 'PAID' and paid_at is not null
    union all
    select b.tenant_id, 'qbo', b.entity_type, b.qbo_id, b.created_at, cast(round(b.total_amt * 100) as bigint),
        upper(b.currency), 'books ' || coalesce(a.name, b.account_id), b.counterparty, b.log_seq
    from books b left join mirror.qbo_accounts a on a.tenant_id = b.tenant_id and a.qbo_id = b.account_id
    union all
    select tenant_id, 'qbo', 'Purchase', qbo_id, created_at,
        (case when is_credit then 1 else -1 end) * cast(round(total_amt * 100) as bigint),
        upper(currency), 'books ' || coalesce(account_name, account_id), private_note, log_seq
    from mirror.qbo_purchases where not is_voided
),

final as (
    select tenant_id, rail, entity_type, entity_id, occurred_at, cast(amount_minor as bigint) as amount_minor,
        currency, account, counterparty, log_seq
    from movements
)

select * from final
