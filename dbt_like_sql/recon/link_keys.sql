-- What each object offers recon.links, per flow: the side it is on (`from` or `to`), the key a counterpart on the
-- other side must share (`match_key`: an id one rail carries of the other, or `amount <minor units>`), the amount
-- the link shows for it and, for a match by amount within a date window, its instant (`instant`; the window,
-- `within_days` after the `from` object's instant, rides on the `from` row). Two objects are candidates when they
-- share a flow, method and key (and the window); nothing else about them counts. So an object whose rows here did
-- not change since the last reconciliation is matched as before unless a counterpart's did: lib/rematch.py
-- re-matches only the objects near a change. One row per object, flow, method, side and key; objects without a key
-- have no row.
-- config: materialized=tenant_table

with payments as (  -- every payment the books ever showed, with its amount before any void
    select tenant_id, qbo_id,
        cast(round(arg_max(total_amt, valid_from) filter (not is_voided and op <> 'deleted') * 100) as bigint) as cents,
        min(created_at) as created_at
    from history.qbo_payments group by tenant_id, qbo_id
),
bill_payments as (
    select tenant_id, qbo_id, arg_max(doc_number, valid_from) filter (where op <> 'deleted') as doc_number,
        cast(round(arg_max(total_amt, valid_from) filter (not is_voided and op <> 'deleted') * 100) as bigint) as cents,
        min(created_at) as created_at
    from history.qbo_bill_payments group by tenant_id, qbo_id
),
bank as (  -- posted transactions of the checking accounts, money in positive; a return names what it returns
    select t.tenant_id, t.transaction_id, -t.amount_cents as cents, t.name, t.original_description, t.check_number,
        starts_with(t.original_description, 'RETURN OF ') as is_return,
        coalesce(t.datetime, cast(t.date as timestamptz)) as posted_at,
        regexp_extract(t.original_description, 'ID:ST-([A-Za-z0-9]{12})', 1) as stripe_ref,
        try_cast(regexp_extract(t.original_description, 'DES:PAYMENT ID:([0-9]{8})', 1) as int) as payment_ref,
        try_cast(regexp_extract(t.original_description, 'DES:BILL PAY ID:([0-9]{8})', 1) as int) as bill_ref
    from mirror.plaid_transactions t
    join mirror.plaid_accounts a on a.tenant_id = t.tenant_id and a.account_id = t.account_id and a.subtype = 'checking'
    where not t.pending
),
settled as (  -- each charge a paid payout settled, as Stripe listed the payout's composition
    select c.tenant_id, c.payout_id, c.txn.source_id as charge_id, p.amount
    from (select tenant_id, stripe_id as payout_id, unnest(balance_transactions) as txn
          from mirror.stripe_payout_compositions) c
    join mirror.stripe_payouts p on p.tenant_id = c.tenant_id and p.stripe_id = c.payout_id and p.status = 'paid'
    where c.txn.type = 'charge'
),
keyed as (  -- flow, method, side, rail, entity_type, entity_id, amount_minor, match_key, instant, within_days
    select tenant_id, 'charge_booking' as flow, 'reference' as method, 'from' as side, 'stripe' as rail,
        'charge' as entity_type, stripe_id as entity_id, amount as amount_minor, qbo_payment_id as match_key,
        null::timestamptz as instant, null::int as within_days
    from mirror.stripe_charges
    union all
    select tenant_id, 'charge_booking', 'reference', 'to', 'qbo', 'Payment', qbo_id, cents, qbo_id, null, null
    from payments
    union all
    select tenant_id, 'charge_payout', 'reference', 'from', 'stripe', 'charge', stripe_id, amount, stripe_id, null, null
    from mirror.stripe_charges
    union all
    select tenant_id, 'charge_payout', 'reference', 'to', 'stripe', 'payout', payout_id, amount, charge_id, null, null
    from settled
    union all
    select tenant_id, 'payout_booking', 'reference', 'from', 'stripe', 'payout', stripe_id, amount, stripe_id, null,
        null
    from mirror.stripe_payouts
    union all
    select tenant_id, 'payout_booking', 'reference', 'to', 'qbo', 'Deposit', qbo_id,
        cast(round(total_amt * 100) as bigint), payout_id, null, null
    from mirror.qbo_deposits where not is_voided
    union all
    select tenant_id, 'payout_bank', 'reference', 'from', 'stripe', 'payout', stripe_id, amount,
        substr(stripe_id, 4, 12), null, null
    from mirror.stripe_payouts
    union all
    select tenant_id, 'payout_bank', 'reference', 'to', 'plaid', 'transaction', transaction_id, cents, stripe_ref,
        null, null
    from bank where not is_return
    union all
    select tenant_id, 'payment_bank', 'reference', 'from', 'qbo', 'Payment', qbo_id, cents,
        cast(cast(qbo_id as int) as varchar), null, null
    from payments
    union all
    select tenant_id, 'payment_bank', 'reference', 'to', 'plaid', 'transaction', transaction_id, cents,
        cast(payment_ref as varchar), null, null
    from bank where not is_return
    union all
    select tenant_id, 'payment_bank', 'amount_date', 'from', 'qbo', 'Payment', qbo_id, cents, 'amount ' || cents,
        created_at, 14
    from payments
    union all
    select tenant_id, 'payment_bank', 'amount_date', 'to', 'plaid', 'transaction', transaction_id, cents,
        'amount ' || cents, posted_at, null
    from bank where name like 'DEPOSITED CHECK%'
    union all  -- a check number can come round again: the check's amount must agree as well
    select tenant_id, 'bill_payment_bank', 'reference', 'from', 'qbo', 'BillPayment', qbo_id, cents,
        'check ' || doc_number || ' ' || cents, null, null
    from bill_payments
    union all
    select tenant_id, 'bill_payment_bank', 'reference', 'from', 'qbo', 'BillPayment', qbo_id, cents,
        'id ' || cast(qbo_id as int), null, null
    from bill_payments
    union all
    select tenant_id, 'bill_payment_bank', 'reference', 'to', 'plaid', 'transaction', transaction_id, -cents,
        'check ' || check_number || ' ' || -cents, null, null
    from bank where not is_return
    union all
    select tenant_id, 'bill_payment_bank', 'reference', 'to', 'plaid', 'transaction', transaction_id, -cents,
        'id ' || bill_ref, null, null
    from bank where not is_return
    union all
    select tenant_id, 'bill_payment_bank', 'amount_date', 'from', 'qbo', 'BillPayment', qbo_id, cents,
        'amount ' || cents, created_at, 14
    from bill_payments
    union all
    select tenant_id, 'bill_payment_bank', 'amount_date', 'to', 'plaid', 'transaction', transaction_id, -cents,
        'amount ' || -cents, posted_at, null
    from bank where name like 'RAMP BILL PAY%'
    union all
    select tenant_id, 'card_booking', 'reference', 'from', 'ramp', 'transaction', transaction_id, amount_cents,
        transaction_id, null, null
    from mirror.ramp_transactions
    union all
    select tenant_id, 'card_booking', 'reference', 'to', 'qbo', 'Purchase', qbo_id,
        cast(round(total_amt * 100) as bigint), ramp_transaction_id, null, null
    from mirror.qbo_purchases where not is_voided
    union all
    select tenant_id, 'card_statement', 'reference', 'from', 'ramp', 'transaction', transaction_id, amount_cents,
        statement_id, null, null
    from mirror.ramp_transactions
    union all
    select tenant_id, 'card_statement', 'reference', 'to', 'ramp', 'statement', statement_id, charges_cents,
        statement_id, null, null
    from mirror.ramp_statements
    union all
    select tenant_id, 'statement_bank', 'amount_date', 'from', 'ramp', 'statement', statement_id, charges_cents,
        'amount ' || charges_cents, null, null
    from mirror.ramp_statements
    union all
    select tenant_id, 'statement_bank', 'amount_date', 'to', 'plaid', 'transaction', transaction_id, -cents,
        'amount ' || -cents, null, null
    from bank where name = 'RAMP CARD PAYMENT'
    union all
    select tenant_id, 'bill_booking', 'reference', 'from', 'ramp', 'bill', bill_id, amount_cents, remote_id, null,
        null
    from mirror.ramp_bills
    union all
    select tenant_id, 'bill_booking', 'reference', 'to', 'qbo', 'Bill', qbo_id, cast(round(total_amt * 100) as bigint),
        qbo_id, null, null
    from mirror.qbo_bills
    union all  -- a bank return names what it returns, for the same money
    select tenant_id, 'bank_return', 'reference', 'from', 'plaid', 'transaction', transaction_id, cents,
        original_description || ' ' || cents, null, null
    from bank
    union all
    select tenant_id, 'bank_return', 'reference', 'to', 'plaid', 'transaction', transaction_id, -cents,
        substr(original_description, 11) || ' ' || -cents, null, null
    from bank where is_return
),

final as (
    select distinct
        tenant_id,
        flow,
        method,
        side,
        rail,
        entity_type,
        entity_id,
        cast(amount_minor as bigint) as amount_minor,
        match_key,
        instant,
        within_days
    from keyed
    where match_key is not null
)

select * from final
