-- Every cross-rail flow that does not close, per tenant, with the instant its kind's tolerance passes (`due_at`)
-- and the tenant's QBO clock at its last sync (`as_of`, from recon.horizons): recon.breaks shows those past due,
-- recon.pending the rest. A payout never deposited or deposited gross, a payout or payment the bank never shows,
-- card spend never booked or booked twice, a bill paid on Ramp the books never record paid, a bank credit for
-- another amount than the books, a bank transaction nothing explains. Flows close through recon.links (a rejected
-- or superseded link closes nothing). `break_id` is stable across runs (tenant, kind and the object the break is
-- about); `evidence` the rail objects as the log names them (JSON list of {rail, entity_type, entity_id}, the
-- subject first). How each kind is found, and its tolerance: docs/reconciliation.md.
-- config: materialized=tenant_table

with live as (
    select * from recon.links where status not in ('rejected', 'superseded')
),
checking as (
    select t.tenant_id, t.transaction_id, -t.amount_cents as cents, t.category_detailed, t.payment_channel, t.name,
        t.original_description, t.check_number, coalesce(t.datetime, cast(t.date as timestamptz)) as posted_at
    from mirror.plaid_transactions t
    join mirror.plaid_accounts a on a.tenant_id = t.tenant_id and a.account_id = t.account_id and a.subtype = 'checking'
    where not t.pending
),
payments as (  -- every payment and bill payment the books ever showed, and whether it is voided or deleted now
    select tenant_id, 'Payment' as entity_type, qbo_id,
        cast(round(arg_max(total_amt, valid_from) filter (not is_voided and op <> 'deleted') * 100) as bigint) as cents,
        min(created_at) as created_at, bool_or(is_current and (is_voided or op = 'deleted')) as is_voided
    from history.qbo_payments group by tenant_id, qbo_id
    union all
    select tenant_id, 'BillPayment', qbo_id,
        cast(round(arg_max(total_amt, valid_from) filter (not is_voided and op <> 'deleted') * 100) as bigint),
        min(created_at), bool_or(is_current and (is_voided or op = 'deleted'))
    from history.qbo_bill_payments group by tenant_id, qbo_id
),
voided_unseen as (  -- payments and bill payments the log never showed live, only voided or as a deletion's tombstone
                    -- (so recon.links cannot match their check by amount or number), with when the books took them
                    -- back (the first such version's LastUpdatedTime: valid_from is when a sync logged it)
    select tenant_id, 'Payment' as entity_type, null::varchar as doc_number, min(created_at) as created_at,
        arg_min(updated_at, log_seq) as voided_at, min(valid_from) as logged_at
    from history.qbo_payments group by tenant_id, qbo_id having bool_and(is_voided or op = 'deleted')
    union all
    select tenant_id, 'BillPayment', arg_max(doc_number, log_seq), min(created_at), arg_min(updated_at, log_seq),
        min(valid_from)
    from history.qbo_bill_payments group by tenant_id, qbo_id having bool_and(is_voided or op = 'deleted')
),
synced as (  -- each sync that logged payments, with the newest change it logged: what was made before, it saw
    select tenant_id, 'Payment' as entity_type, valid_from, max(updated_at) as high
    from history.qbo_payments group by tenant_id, valid_from
    union all
    select tenant_id, 'BillPayment', valid_from, max(updated_at) from history.qbo_bill_payments
    group by tenant_id, valid_from
),
windows as (  -- when such a payment's check may have posted: within 14 days of its making; known only by its
              -- tombstone, before its deletion and after the last earlier sync (which would have logged it live)
    select v.*, coalesce(v.created_at, (select max(s.high) from synced s where s.tenant_id = v.tenant_id
                                        and s.entity_type = v.entity_type and s.valid_from < v.logged_at)) as since,
        coalesce(v.created_at + interval 14 day, v.voided_at) as until
    from voided_unseen v
),
awaiting_return as (  -- checks that may be such a payment's money (a vendor check of its number, or of no number
                      -- known inside its window; a deposited check inside a customer payment's window): the bank
                      -- returns a taken-back payment's money, so they wait for that until 5 days after
    select c.tenant_id, c.transaction_id, max(w.voided_at) as voided_at
    from checking c join windows w on w.tenant_id = c.tenant_id and c.check_number is not null
        and (w.entity_type = 'BillPayment') = (c.cents < 0)
        and (w.doc_number = c.check_number
             or (w.doc_number is null and c.posted_at <= w.until and (w.since is null or c.posted_at >= w.since)))
    group by c.tenant_id, c.transaction_id
),
ramp_debits as (  -- Ramp's bill-pay ACH debits and the Ramp bills each may pay: the vendor's, paid in the 5 days before
    select r.tenant_id, r.bill_id, c.transaction_id, c.cents, c.original_description
    from mirror.ramp_bills r join checking c on c.tenant_id = r.tenant_id
        and c.name = 'RAMP BILL PAY ' || upper(r.vendor_name)
        and c.posted_at between r.paid_at and r.paid_at + interval 5 day
),
unrecorded as (  -- bills paid on Ramp and debited for exactly their amount, whose QBO bill is open and never had a
                 -- bill payment: none linking it, none made when Ramp paid (voided since), and the debit not returned.
                 -- `taken_back_at`: a bill payment known only by its tombstone may have been the one the books made
                 -- when Ramp paid (made before its deletion, after the last earlier sync) when the bill changed as it
                 -- was deleted (its balance back): the debit's return is then due 5 days after the deletion
    select r.tenant_id, r.bill_id, r.amount_cents, r.paid_at, q.qbo_id, d.transaction_id,
        (select max(w.until) from windows w
         where w.tenant_id = q.tenant_id and w.entity_type = 'BillPayment' and w.created_at is null
           and r.paid_at <= w.until and (w.since is null or r.paid_at >= w.since)
           and q.updated_at between w.until and w.until + interval 1 minute) as taken_back_at
    from mirror.ramp_bills r
    join ramp_debits d on d.tenant_id = r.tenant_id and d.bill_id = r.bill_id and -d.cents = r.amount_cents
    join live l on l.tenant_id = r.tenant_id and l.flow = 'bill_booking' and l.from_id = r.bill_id
    join mirror.qbo_bills q on q.tenant_id = l.tenant_id and q.qbo_id = l.to_id
    where not q.is_voided and q.balance = q.total_amt
      and not exists (select 1 from history.qbo_bill_payments p where p.tenant_id = q.tenant_id
                      and (list_contains(p.linked_bill_ids, q.qbo_id)
                           or (p.vendor_id = q.vendor_id and p.created_at = r.paid_at)))
      and not exists (select 1 from checking x where x.tenant_id = d.tenant_id
                      and x.original_description = 'RETURN OF ' || d.original_description)
    qualify row_number() over (partition by r.tenant_id, r.bill_id order by d.transaction_id) = 1
),
expected as (  -- objects that must reach another rail through a flow of recon.links, and the break if they do not
    select tenant_id, 'payout_not_deposited' as kind, 'payout_booking' as flow, 'stripe' as rail,
        'payout' as entity_type, stripe_id as entity_id, amount as amount_minor,
        cast(arrival_date as timestamptz) + interval 5 day as due_at
    from mirror.stripe_payouts where status = 'paid'
    union all
    select tenant_id, 'payout_not_in_bank', 'payout_bank', 'stripe', 'payout', stripe_id, amount,
        cast(arrival_date as timestamptz) + interval 5 day
    from mirror.stripe_payouts where status = 'paid'
    union all
    select tenant_id, 'card_spend_not_booked', 'card_booking', 'ramp', 'transaction', transaction_id, amount_cents,
        settlement_date + interval 5 day
    from mirror.ramp_transactions where state = 'CLEARED'
),
found as (
    select e.tenant_id, e.kind, e.amount_minor, e.due_at,
        [{'rail': e.rail, 'entity_type': e.entity_type, 'entity_id': e.entity_id}] as evidence
    from expected e
    where not exists (select 1 from live l where l.tenant_id = e.tenant_id and l.flow = e.flow
                      and l.from_id = e.entity_id)
    union all
    select l.tenant_id, 'deposit_amount_mismatch', abs(l.to_amount_minor - l.from_amount_minor), d.created_at,
        [{'rail': 'qbo', 'entity_type': 'Deposit', 'entity_id': l.to_id},
         {'rail': 'stripe', 'entity_type': 'payout', 'entity_id': l.from_id}]
    from live l join mirror.qbo_deposits d on d.tenant_id = l.tenant_id and d.qbo_id = l.to_id
    where l.flow = 'payout_booking' and l.to_amount_minor <> l.from_amount_minor
    union all
    select q.tenant_id, 'booking_duplicated', q.from_amount_minor, q.created_at,
        [{'rail': 'qbo', 'entity_type': 'Purchase', 'entity_id': q.to_id},
         {'rail': 'ramp', 'entity_type': 'transaction', 'entity_id': q.from_id},
         {'rail': 'qbo', 'entity_type': 'Purchase', 'entity_id': q.first_id}]
    from (select l.*, b.created_at, row_number() over w as nth, first_value(l.to_id) over w as first_id
          from live l join mirror.qbo_purchases b on b.tenant_id = l.tenant_id and b.qbo_id = l.to_id
          where l.flow = 'card_booking'
          window w as (partition by l.tenant_id, l.from_id order by b.created_at, cast(l.to_id as int))) q
    where q.nth > 1
    union all
    select l.tenant_id, 'amount_mismatch', abs(l.to_amount_minor - p.cents), c.posted_at,
        [{'rail': 'plaid', 'entity_type': 'transaction', 'entity_id': l.to_id},
         {'rail': 'qbo', 'entity_type': 'Payment', 'entity_id': l.from_id}]
    from live l
    join (select tenant_id, qbo_id, cast(round(total_amt * 100) as bigint) as cents
          from mirror.qbo_payments where not is_voided) p on p.tenant_id = l.tenant_id and p.qbo_id = l.from_id
    join checking c on c.tenant_id = l.tenant_id and c.transaction_id = l.to_id
    where l.flow = 'payment_bank' and l.method = 'reference' and l.to_amount_minor <> p.cents
    union all
    select m.tenant_id, 'payment_recorded_not_in_bank', m.cents, m.created_at + interval 14 day,
        [{'rail': 'qbo', 'entity_type': m.entity_type, 'entity_id': m.qbo_id}]
    from payments m join recon.horizons h using (tenant_id)
    where not m.is_voided and m.cents > 0 and m.created_at >= h.bank_since
      and not exists (select 1 from live l where l.tenant_id = m.tenant_id and l.to_rail = 'qbo'
                      and l.to_type = m.entity_type and l.to_id = m.qbo_id and l.flow = 'charge_booking')
      and not exists (select 1 from live l where l.tenant_id = m.tenant_id and l.from_rail = 'qbo'
                      and l.from_type = m.entity_type and l.from_id = m.qbo_id and l.to_rail = 'plaid')
    union all
    select u.tenant_id, 'bill_paid_not_recorded', u.amount_cents, greatest(u.paid_at, u.taken_back_at) + interval 5 day,
        [{'rail': 'ramp', 'entity_type': 'bill', 'entity_id': u.bill_id},
         {'rail': 'qbo', 'entity_type': 'Bill', 'entity_id': u.qbo_id},
         {'rail': 'plaid', 'entity_type': 'transaction', 'entity_id': u.transaction_id}]
    from unrecorded u
    union all
    select c.tenant_id, 'bank_txn_unexplained', abs(c.cents), greatest(c.posted_at, v.voided_at) + interval 5 day,
        [{'rail': 'plaid', 'entity_type': 'transaction', 'entity_id': c.transaction_id}]
    from checking c  -- a check that may be a payment's first logged voided: due when its return is
    left join awaiting_return v on v.tenant_id = c.tenant_id and v.transaction_id = c.transaction_id
    where c.payment_channel = 'other'
      and c.category_detailed not in ('BANK_FEES_OTHER_BANK_FEES', 'TRANSFER_OUT_SAVINGS', 'TRANSFER_IN_SAVINGS',
                                      'INCOME_INTEREST_EARNED', 'LOAN_PAYMENTS_CREDIT_CARD_PAYMENT')
      and not exists (select 1 from live l where l.tenant_id = c.tenant_id
                      and ((l.to_rail = 'plaid' and l.to_id = c.transaction_id)
                           or (l.from_rail = 'plaid' and l.from_id = c.transaction_id)))
      and not exists (select 1 from ramp_debits d where d.tenant_id = c.tenant_id
                      and d.transaction_id = c.transaction_id)
),

final as (
    select
        f.tenant_id,
        substr(sha256(concat_ws('|', f.tenant_id, f.kind, f.evidence[1].rail, f.evidence[1].entity_type,
                                f.evidence[1].entity_id)), 1, 16) as break_id,
        f.kind,
        cast(f.amount_minor as bigint) as amount_minor,
        'USD' as currency,
        cast(to_json(f.evidence) as varchar) as evidence,
        f.evidence[1].rail as subject_rail,
        f.evidence[1].entity_type as subject_type,
        f.evidence[1].entity_id as subject_id,
        f.due_at,
        h.as_of
    from found f join recon.horizons h using (tenant_id)
)

select * from final
