-- Cross-rail breaks, one row per flow that does not close past its tolerance, per tenant, at the tenant's QBO clock
-- of its last sync: a payout never deposited or deposited gross, a payout or payment the bank never shows, card spend
-- never booked or booked twice, a bank credit for another amount than the books, a bank transaction nothing explains.
-- `break_id` is stable across runs (tenant, kind and the object the break is about); `evidence` the rail objects
-- as the log names them (JSON list of {rail, entity_type, entity_id}, the subject first). How each kind is found,
-- and its tolerance: docs/reconciliation.md.
-- config: materialized=tenant_table

with now_ as (
    select tenant_id, max(rail_now) as now from meta.sync_cursors where rail = 'qbo' group by tenant_id
),
payouts as (
    select p.tenant_id, p.stripe_id, p.amount, p.arrival_date, p.status, n.now
    from mirror.stripe_payouts p join now_ n using (tenant_id)
),
deposits as (
    select tenant_id, qbo_id, payout_id, cast(round(total_amt * 100) as bigint) as cents, created_at
    from mirror.qbo_deposits where not is_voided
),
bank as (
    select tenant_id, transaction_id, -amount_cents as cents, date, datetime, name, original_description,
        regexp_extract(original_description, 'ID:ST-([A-Za-z0-9]{12})', 1) as stripe_ref,
        regexp_extract(original_description, 'DES:PAYMENT ID:([0-9]{8})', 1) as payment_ref
    from mirror.plaid_transactions where not pending
),
purchases as (
    select tenant_id, qbo_id, ramp_transaction_id, created_at from mirror.qbo_purchases where not is_voided
),
ramp as (
    select r.tenant_id, r.transaction_id, r.amount_cents, r.settlement_date, n.now
    from mirror.ramp_transactions r join now_ n using (tenant_id) where r.state = 'CLEARED'
),
payments as (
    select tenant_id, qbo_id, cast(round(total_amt * 100) as bigint) as cents, created_at
    from mirror.qbo_payments where not is_voided
),
checking as (
    select b.*, t.category_detailed, t.payment_channel, t.check_number, t.account_id,
        coalesce(t.datetime, cast(t.date as timestamptz)) as posted_at,
        regexp_extract(t.original_description, 'DES:BILL PAY ID:([0-9]{8})', 1) as bill_payment_ref
    from bank b
    join mirror.plaid_transactions t on t.tenant_id = b.tenant_id and t.transaction_id = b.transaction_id
    join mirror.plaid_accounts a on a.tenant_id = t.tenant_id and a.account_id = t.account_id and a.subtype = 'checking'
),
bank_start as (
    select tenant_id, min(posted_at) as since from checking group by tenant_id
),
card_payments as (
    select distinct tenant_id, qbo_payment_id from mirror.stripe_charges where qbo_payment_id is not null
),
all_payments as (
    select tenant_id, qbo_id,
        cast(round(arg_max(total_amt, valid_from) filter (where not is_voided and op <> 'deleted') * 100) as bigint) as cents,
        min(created_at) as created_at, bool_or(is_current and (is_voided or op = 'deleted')) as is_voided
    from history.qbo_payments group by tenant_id, qbo_id
),
all_bill_payments as (
    select tenant_id, qbo_id, arg_max(doc_number, valid_from) filter (where op <> 'deleted') as doc_number,
        cast(round(arg_max(total_amt, valid_from) filter (where not is_voided and op <> 'deleted') * 100) as bigint) as cents,
        min(created_at) as created_at, bool_or(is_current and (is_voided or op = 'deleted')) as is_voided
    from history.qbo_bill_payments group by tenant_id, qbo_id
),
bank_links as (
    select c.tenant_id, c.transaction_id, 'stripe' as rail, 'payout' as entity_type, p.stripe_id as entity_id
    from checking c join mirror.stripe_payouts p on p.tenant_id = c.tenant_id and c.stripe_ref = substr(p.stripe_id, 4, 12)
    union all
    select c.tenant_id, c.transaction_id, 'qbo', 'Payment', m.qbo_id
    from checking c join all_payments m on m.tenant_id = c.tenant_id
        and cast(m.qbo_id as int) = try_cast(nullif(c.payment_ref, '') as int)
    union all
    select c.tenant_id, c.transaction_id, 'qbo', 'Payment', m.qbo_id
    from checking c join all_payments m on m.tenant_id = c.tenant_id and c.name like 'DEPOSITED CHECK%'
        and c.cents = m.cents and c.posted_at between m.created_at and m.created_at + interval 14 day
    union all
    select c.tenant_id, c.transaction_id, 'qbo', 'BillPayment', m.qbo_id
    from checking c join all_bill_payments m on m.tenant_id = c.tenant_id
        and (c.check_number = m.doc_number or cast(m.qbo_id as int) = try_cast(nullif(c.bill_payment_ref, '') as int))
    union all
    select c.tenant_id, c.transaction_id, 'qbo', 'BillPayment', m.qbo_id
    from checking c join all_bill_payments m on m.tenant_id = c.tenant_id and c.name like 'RAMP BILL PAY%'
        and -c.cents = m.cents and c.posted_at between m.created_at and m.created_at + interval 14 day
    union all
    select c.tenant_id, c.transaction_id, 'plaid', 'transaction', r.transaction_id
    from checking c join checking r on r.tenant_id = c.tenant_id and r.cents = -c.cents
        and (r.original_description = 'RETURN OF ' || c.original_description
             or c.original_description = 'RETURN OF ' || r.original_description)
    union all
    select c.tenant_id, c.transaction_id, 'ramp', 'statement', s.statement_id
    from checking c join mirror.ramp_statements s on s.tenant_id = c.tenant_id and c.name = 'RAMP CARD PAYMENT'
        and -c.cents = s.charges_cents
),
found as (
    select p.tenant_id, 'payout_not_deposited' as kind, p.amount as amount_minor,
        [{'rail': 'stripe', 'entity_type': 'payout', 'entity_id': p.stripe_id}] as evidence
    from payouts p
    where p.status = 'paid' and p.now >= cast(p.arrival_date as timestamptz) + interval 5 day
      and not exists (select 1 from deposits d where d.tenant_id = p.tenant_id and d.payout_id = p.stripe_id)
    union all
    select p.tenant_id, 'deposit_amount_mismatch', abs(d.cents - p.amount),
        [{'rail': 'qbo', 'entity_type': 'Deposit', 'entity_id': d.qbo_id},
         {'rail': 'stripe', 'entity_type': 'payout', 'entity_id': p.stripe_id}]
    from payouts p join deposits d on d.tenant_id = p.tenant_id and d.payout_id = p.stripe_id
    where d.cents <> p.amount
    union all
    select p.tenant_id, 'payout_not_in_bank', p.amount,
        [{'rail': 'stripe', 'entity_type': 'payout', 'entity_id': p.stripe_id}]
    from payouts p
    where p.status = 'paid' and p.now >= cast(p.arrival_date as timestamptz) + interval 5 day
      and not exists (select 1 from bank b where b.tenant_id = p.tenant_id and b.stripe_ref = substr(p.stripe_id, 4, 12))
    union all
    select r.tenant_id, 'card_spend_not_booked', r.amount_cents,
        [{'rail': 'ramp', 'entity_type': 'transaction', 'entity_id': r.transaction_id}]
    from ramp r
    where r.now >= r.settlement_date + interval 5 day
      and not exists (select 1 from purchases q where q.tenant_id = r.tenant_id and q.ramp_transaction_id = r.transaction_id)
    union all
    select q.tenant_id, 'booking_duplicated', r.amount_cents,
        [{'rail': 'qbo', 'entity_type': 'Purchase', 'entity_id': q.qbo_id},
         {'rail': 'ramp', 'entity_type': 'transaction', 'entity_id': q.ramp_transaction_id},
         {'rail': 'qbo', 'entity_type': 'Purchase', 'entity_id': q.first_id}]
    from (select *, row_number() over w as nth, first_value(qbo_id) over w as first_id
          from purchases where ramp_transaction_id is not null
          window w as (partition by tenant_id, ramp_transaction_id order by created_at, cast(qbo_id as int))) q
    join mirror.ramp_transactions r on r.tenant_id = q.tenant_id and r.transaction_id = q.ramp_transaction_id
    where q.nth > 1
    union all
    select b.tenant_id, 'amount_mismatch', abs(b.cents - m.cents),
        [{'rail': 'plaid', 'entity_type': 'transaction', 'entity_id': b.transaction_id},
         {'rail': 'qbo', 'entity_type': 'Payment', 'entity_id': m.qbo_id}]
    from bank b join payments m on m.tenant_id = b.tenant_id and cast(m.qbo_id as int) = cast(nullif(b.payment_ref, '') as int)
    where b.cents <> m.cents
)
, more as (
    select m.tenant_id, 'payment_recorded_not_in_bank' as kind, m.cents as amount_minor,
        [{'rail': 'qbo', 'entity_type': 'Payment', 'entity_id': m.qbo_id}] as evidence
    from all_payments m join now_ n using (tenant_id) join bank_start s using (tenant_id)
    where not m.is_voided and m.cents > 0 and m.created_at >= s.since and n.now >= m.created_at + interval 14 day
      and not exists (select 1 from card_payments k where k.tenant_id = m.tenant_id and k.qbo_payment_id = m.qbo_id)
      and not exists (select 1 from bank_links l where l.tenant_id = m.tenant_id and l.entity_type = 'Payment' and l.entity_id = m.qbo_id)
    union all
    select m.tenant_id, 'payment_recorded_not_in_bank', m.cents,
        [{'rail': 'qbo', 'entity_type': 'BillPayment', 'entity_id': m.qbo_id}]
    from all_bill_payments m join now_ n using (tenant_id) join bank_start s using (tenant_id)
    where not m.is_voided and m.cents > 0 and m.created_at >= s.since and n.now >= m.created_at + interval 14 day
      and not exists (select 1 from bank_links l where l.tenant_id = m.tenant_id and l.entity_type = 'BillPayment' and l.entity_id = m.qbo_id)
    union all
    select c.tenant_id, 'bank_txn_unexplained', abs(c.cents),
        [{'rail': 'plaid', 'entity_type': 'transaction', 'entity_id': c.transaction_id}]
    from checking c join now_ n using (tenant_id)
    where c.payment_channel = 'other'
      and c.category_detailed not in ('BANK_FEES_OTHER_BANK_FEES', 'TRANSFER_OUT_SAVINGS', 'TRANSFER_IN_SAVINGS',
                                      'INCOME_INTEREST_EARNED', 'LOAN_PAYMENTS_CREDIT_CARD_PAYMENT')
      and n.now >= c.posted_at + interval 5 day
      and not exists (select 1 from bank_links l where l.tenant_id = c.tenant_id and l.transaction_id = c.transaction_id)
)
, everything as (
    select * from found union all select * from more
),

final as (
    select
        tenant_id,
        substr(sha256(concat_ws('|', tenant_id, kind, evidence[1].rail, evidence[1].entity_type,
                                evidence[1].entity_id)), 1, 16) as break_id,
        kind,
        'open' as status,
        cast(amount_minor as bigint) as amount_minor,
        'USD' as currency,
        cast(to_json(evidence) as varchar) as evidence,
        evidence[1].rail as subject_rail,
        evidence[1].entity_type as subject_type,
        evidence[1].entity_id as subject_id
    from everything
)

select * from final
