-- Objects on different rails that are the same money, one row per pair, per tenant: the charge booked as a QBO
-- payment, the payout booked as a deposit and seen at the bank, the payments and bill payments the bank shows, the
-- card spend booked as purchases and batched on a statement the bank pays, the Ramp bill booked in QBO, a bank
-- return and what it returns. `method`: `reference` (an id one rail carries of the
-- other, confidence 1) or `amount_date` (the same amount within a window, and a name where the bank gives one:
-- 0.9 when it is the only candidate either way, else 0.5 and `review`: never guessed). People's decisions
-- (raw.recon_decisions, the latest per link) confirm a link or reject it; a rejected link is not proposed again,
-- and a confirmed one supersedes the other candidates of its objects. `link_id` is stable across runs.
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
settled as (  -- each balance transaction a paid payout settled, as Stripe listed the payout's composition
    select tenant_id, stripe_id as payout_id, unnest(balance_transactions) as txn
    from mirror.stripe_payout_compositions
),
candidates as (
    select c.tenant_id, 'charge_booking' as flow, 'reference' as method,
        'stripe' as from_rail, 'charge' as from_type, c.stripe_id as from_id, c.amount as from_amount_minor,
        'qbo' as to_rail, 'Payment' as to_type, m.qbo_id as to_id, m.cents as to_amount_minor
    from mirror.stripe_charges c join payments m on m.tenant_id = c.tenant_id and m.qbo_id = c.qbo_payment_id
    union all
    select s.tenant_id, 'charge_payout', 'reference', 'stripe', 'charge', c.stripe_id, c.amount,
        'stripe', 'payout', p.stripe_id, p.amount
    from settled s
    join mirror.stripe_charges c on c.tenant_id = s.tenant_id and c.stripe_id = s.txn.source_id
    join mirror.stripe_payouts p on p.tenant_id = s.tenant_id and p.stripe_id = s.payout_id and p.status = 'paid'
    where s.txn.type = 'charge'
    union all
    select p.tenant_id, 'payout_booking', 'reference', 'stripe', 'payout', p.stripe_id, p.amount,
        'qbo', 'Deposit', d.qbo_id, cast(round(d.total_amt * 100) as bigint)
    from mirror.stripe_payouts p join mirror.qbo_deposits d on d.tenant_id = p.tenant_id and d.payout_id = p.stripe_id
    where not d.is_voided
    union all
    select p.tenant_id, 'payout_bank', 'reference', 'stripe', 'payout', p.stripe_id, p.amount,
        'plaid', 'transaction', b.transaction_id, b.cents
    from mirror.stripe_payouts p join bank b on b.tenant_id = p.tenant_id and b.stripe_ref = substr(p.stripe_id, 4, 12)
        and not b.is_return
    union all
    select m.tenant_id, 'payment_bank', 'reference', 'qbo', 'Payment', m.qbo_id, m.cents,
        'plaid', 'transaction', b.transaction_id, b.cents
    from payments m join bank b on b.tenant_id = m.tenant_id and b.payment_ref = cast(m.qbo_id as int)
        and not b.is_return
    union all
    select m.tenant_id, 'payment_bank', 'amount_date', 'qbo', 'Payment', m.qbo_id, m.cents,
        'plaid', 'transaction', b.transaction_id, b.cents
    from payments m join bank b on b.tenant_id = m.tenant_id and b.name like 'DEPOSITED CHECK%' and b.cents = m.cents
        and b.posted_at between m.created_at and m.created_at + interval 14 day
    union all
    select m.tenant_id, 'bill_payment_bank', 'reference', 'qbo', 'BillPayment', m.qbo_id, m.cents,
        'plaid', 'transaction', b.transaction_id, -b.cents
    from bill_payments m join bank b on b.tenant_id = m.tenant_id
        and not b.is_return  -- a check number can come round again: the check's amount must agree as well
        and ((b.check_number = m.doc_number and -b.cents = m.cents) or b.bill_ref = cast(m.qbo_id as int))
    union all
    select m.tenant_id, 'bill_payment_bank', 'amount_date', 'qbo', 'BillPayment', m.qbo_id, m.cents,
        'plaid', 'transaction', b.transaction_id, -b.cents
    from bill_payments m join bank b on b.tenant_id = m.tenant_id and b.name like 'RAMP BILL PAY%'
        and -b.cents = m.cents and b.posted_at between m.created_at and m.created_at + interval 14 day
    union all
    select r.tenant_id, 'card_booking', 'reference', 'ramp', 'transaction', r.transaction_id, r.amount_cents,
        'qbo', 'Purchase', q.qbo_id, cast(round(q.total_amt * 100) as bigint)
    from mirror.ramp_transactions r
    join mirror.qbo_purchases q on q.tenant_id = r.tenant_id and q.ramp_transaction_id = r.transaction_id
    where not q.is_voided
    union all
    select r.tenant_id, 'card_statement', 'reference', 'ramp', 'transaction', r.transaction_id, r.amount_cents,
        'ramp', 'statement', s.statement_id, s.charges_cents
    from mirror.ramp_transactions r
    join mirror.ramp_statements s on s.tenant_id = r.tenant_id and s.statement_id = r.statement_id
    union all
    select s.tenant_id, 'statement_bank', 'amount_date', 'ramp', 'statement', s.statement_id, s.charges_cents,
        'plaid', 'transaction', b.transaction_id, -b.cents
    from mirror.ramp_statements s join bank b on b.tenant_id = s.tenant_id and b.name = 'RAMP CARD PAYMENT'
        and -b.cents = s.charges_cents
    union all
    select r.tenant_id, 'bill_booking', 'reference', 'ramp', 'bill', r.bill_id, r.amount_cents,
        'qbo', 'Bill', q.qbo_id, cast(round(q.total_amt * 100) as bigint)
    from mirror.ramp_bills r join mirror.qbo_bills q on q.tenant_id = r.tenant_id and q.qbo_id = r.remote_id
    union all
    select o.tenant_id, 'bank_return', 'reference', 'plaid', 'transaction', o.transaction_id, o.cents,
        'plaid', 'transaction', r.transaction_id, -r.cents
    from bank o join bank r on r.tenant_id = o.tenant_id and r.cents = -o.cents
        and r.original_description = 'RETURN OF ' || o.original_description
),
proposed as (  -- one row per pair (a pair found both by reference and by amount keeps the reference)
    select *,
        count(*) over (partition by tenant_id, flow, method, from_rail, from_type, from_id) as from_candidates,
        count(*) over (partition by tenant_id, flow, method, to_rail, to_type, to_id) as to_candidates
    from candidates
    qualify row_number() over (
        partition by tenant_id, flow, from_rail, from_type, from_id, to_rail, to_type, to_id
        order by method = 'reference' desc
    ) = 1
),
decided as (  -- the latest decision about each link
    select tenant_id, substr(entity_id, 6) as link_id, payload ->> '$.action' as action,
        payload ->> '$.by' as decided_by, payload ->> '$.why' as decision_why, observed_at as decided_at
    from raw.recon_decisions
    where entity_id like 'link:%'
    qualify row_number() over (partition by tenant_id, entity_id order by seq desc) = 1
),
identified as (
    select p.*,
        substr(sha256(concat_ws('|', p.tenant_id, p.flow, p.from_rail, p.from_type, p.from_id, p.to_rail, p.to_type,
                                p.to_id)), 1, 16) as link_id
    from proposed p
),
with_decisions as (
    select i.*, d.action, d.decided_by, d.decision_why, d.decided_at,
        bool_or(d.action = 'confirm') over (partition by i.tenant_id, i.flow, i.from_rail, i.from_type, i.from_id)
            or bool_or(d.action = 'confirm') over (partition by i.tenant_id, i.flow, i.to_rail, i.to_type, i.to_id)
            as object_confirmed
    from identified i left join decided d on d.tenant_id = i.tenant_id and d.link_id = i.link_id
),

final as (
    select
        tenant_id,
        link_id,
        flow,
        method,
        case
            when action = 'confirm' then 'confirmed'
            when action = 'reject' then 'rejected'
            when object_confirmed then 'superseded'
            when method = 'reference' or (from_candidates = 1 and to_candidates = 1) then 'matched'
            else 'review'
        end as status,
        cast(case
            when action = 'confirm' then 1.0
            when action = 'reject' or object_confirmed then 0.0
            when method = 'reference' then 1.0
            when from_candidates = 1 and to_candidates = 1 then 0.9
            else 0.5
        end as double) as confidence,
        from_rail,
        from_type,
        from_id,
        cast(from_amount_minor as bigint) as from_amount_minor,
        to_rail,
        to_type,
        to_id,
        cast(to_amount_minor as bigint) as to_amount_minor,
        decided_by,
        decision_why,
        decided_at
    from with_decisions
)

select * from final
