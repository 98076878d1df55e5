-- Chain of custody of every payable, per tenant: one row per live QBO bill (with its Ramp bill where it has one, by
-- recon.links' bill_booking) and the four steps its payment takes, each with its time and the log version that
-- shows it (`*_seq` and `*_row_hash` of that raw.entity_log row, read through the entity's raw view):
--   approved  the first Ramp version showing the bill approved (Ramp gives no approval time: `approved_at` is when
--             the log saw it); a bill outside Ramp is approved by being booked: its first QBO version, created_at;
--   executed  the first Ramp version showing it paid, Ramp's paid_at; outside Ramp, the recording bill payment;
--   verified  the bank's posted debit: the one recon.links gives the recording bill payment, else Ramp's debit of
--             the bill (the vendor's RAMP BILL PAY for its amount within 5 days of the payment), posted_at;
--   recorded  the first version of the first live QBO bill payment applied to the bill, its created_at.
-- `out_of_order`: a step shown before one it needs (executed needs approved; verified and recorded need executed):
-- a Ramp version paid but not approved, a debit posted before the payment, books recording a payment before Ramp
-- made it. `stuck`: at the tenant's QBO clock of its last sync (`as_of`), a payment executed and not recorded past
-- bill_paid_not_recorded's tolerance (5 days), or not verified past payment_recorded_not_in_bank's (14 days, from
-- the start of the bank history). docs/reconciliation.md, "Chain of custody".
-- config: materialized=tenant_table

with bank as (  -- posted transactions of the checking accounts, money out positive
    select t.tenant_id, t.transaction_id, t.amount_cents as cents, t.name,
        coalesce(t.datetime, cast(t.date as timestamptz)) as posted_at
    from mirror.plaid_transactions t
    join mirror.plaid_accounts a on a.tenant_id = t.tenant_id and a.account_id = t.account_id and a.subtype = 'checking'
    where not t.pending
),
ramp as (  -- each Ramp bill's QBO bill, first approved and paid versions, and whether one showed it paid unapproved
    select r.tenant_id, r.bill_id, l.to_id as qbo_id, arg_max(r.vendor_name, r.log_seq) as vendor_name,
        min(r.log_seq) filter (r.approval_status = 'APPROVED') as approved_seq,
        min(r.valid_from) filter (r.approval_status = 'APPROVED') as approved_at,
        min(r.log_seq) filter (r.paid_at is not null) as executed_seq,
        arg_min(r.paid_at, r.log_seq) filter (r.paid_at is not null) as executed_at,
        bool_or(r.paid_at is not null and r.approval_status <> 'APPROVED') as paid_unapproved
    from history.ramp_bills r
    join recon.links l on l.tenant_id = r.tenant_id and l.flow = 'bill_booking' and l.from_id = r.bill_id
        and l.status not in ('rejected', 'superseded')
    group by r.tenant_id, r.bill_id, l.to_id
),
recorded as (  -- the first live bill payment applied to each bill, and its first version applying it
    select p.tenant_id, p.bill_id as qbo_id, p.qbo_id as bill_payment_id, p.created_at, p.log_seq
    from (select *, unnest(linked_bill_ids) as bill_id from history.qbo_bill_payments) p
    join mirror.qbo_bill_payments m on m.tenant_id = p.tenant_id and m.qbo_id = p.qbo_id and not m.is_voided
    qualify row_number() over (partition by p.tenant_id, p.bill_id order by p.created_at, p.log_seq) = 1
),
paid_bank as (  -- the bank debit of each recorded bill payment, the surest link first
    select l.tenant_id, l.from_id as bill_payment_id, l.to_id as transaction_id
    from recon.links l
    where l.flow = 'bill_payment_bank' and l.status not in ('rejected', 'superseded')
    qualify row_number() over (partition by l.tenant_id, l.from_id order by l.confidence desc, l.to_id) = 1
),
ramp_debits as (  -- Ramp's debit of a bill it paid: the vendor's RAMP BILL PAY for the amount within 5 days
    select r.tenant_id, r.bill_id, b.transaction_id
    from ramp r
    join mirror.ramp_bills m on m.tenant_id = r.tenant_id and m.bill_id = r.bill_id
    join bank b on b.tenant_id = r.tenant_id and b.name = 'RAMP BILL PAY ' || upper(r.vendor_name)
        and b.cents = m.amount_cents and b.posted_at between r.executed_at and r.executed_at + interval 5 day
    qualify row_number() over (partition by r.tenant_id, r.bill_id order by b.posted_at, b.transaction_id) = 1
),
steps as (
    select q.tenant_id, q.qbo_id, r.bill_id as ramp_bill_id, q.vendor_id,
        cast(round(q.total_amt * 100) as bigint) as amount_minor,
        case when r.bill_id is null then q.created_at else r.approved_at end as approved_at,
        case when r.bill_id is null then first_version.log_seq else r.approved_seq end as approved_seq,
        case when r.bill_id is null then c.created_at else r.executed_at end as executed_at,
        case when r.bill_id is null then c.log_seq else r.executed_seq end as executed_seq,
        coalesce(r.paid_unapproved, false) as paid_unapproved,
        coalesce(pb.transaction_id, rd.transaction_id) as bank_transaction_id,
        c.bill_payment_id, c.created_at as recorded_at, c.log_seq as recorded_seq
    from mirror.qbo_bills q
    join (select tenant_id, qbo_id, min(log_seq) as log_seq from history.qbo_bills group by all) first_version
        on first_version.tenant_id = q.tenant_id and first_version.qbo_id = q.qbo_id
    left join ramp r on r.tenant_id = q.tenant_id and r.qbo_id = q.qbo_id
    left join recorded c on c.tenant_id = q.tenant_id and c.qbo_id = q.qbo_id
    left join paid_bank pb on pb.tenant_id = c.tenant_id and pb.bill_payment_id = c.bill_payment_id
    left join ramp_debits rd on rd.tenant_id = r.tenant_id and rd.bill_id = r.bill_id and c.bill_payment_id is null
    where not q.is_voided
),
verified as (  -- each bank debit's posting and the first logged version of it (the bank shows it posted)
    select s.tenant_id, s.bank_transaction_id, any_value(b.posted_at) as verified_at, min(e.seq) as verified_seq,
        arg_min(e.row_hash, e.seq) as verified_row_hash
    from steps s
    join bank b on b.tenant_id = s.tenant_id and b.transaction_id = s.bank_transaction_id
    join raw.plaid_transactions e on e.tenant_id = s.tenant_id and e.entity_id = s.bank_transaction_id
    group by all
),

final as (
    select
        s.tenant_id,
        s.qbo_id as qbo_bill_id,
        s.ramp_bill_id,
        s.vendor_id,
        s.amount_minor,
        s.approved_at,
        s.approved_seq,
        coalesce(ra.row_hash, qa.row_hash) as approved_row_hash,
        s.executed_at,
        s.executed_seq,
        coalesce(re.row_hash, pe.row_hash) as executed_row_hash,
        v.verified_at,
        v.verified_seq,
        v.verified_row_hash,
        s.bank_transaction_id,
        s.recorded_at,
        s.recorded_seq,
        pr.row_hash as recorded_row_hash,
        s.bill_payment_id,
        s.paid_unapproved or coalesce(v.verified_at < s.executed_at or s.recorded_at < s.executed_at, false)
            as out_of_order,
        coalesce(s.executed_at is not null and (
            (s.recorded_at is null and n.as_of >= s.executed_at + interval 5 day)
            or (v.verified_at is null and s.executed_at >= n.bank_since and n.as_of >= s.executed_at + interval 14 day)
        ), false) as stuck,
        n.as_of
    from steps s
    join recon.horizons n on n.tenant_id = s.tenant_id
    left join verified v on v.tenant_id = s.tenant_id and v.bank_transaction_id = s.bank_transaction_id
    left join raw.ramp_bills ra on ra.seq = s.approved_seq  -- a seq is one log row: one of each pair matches
    left join raw.qbo_bills qa on qa.seq = s.approved_seq
    left join raw.ramp_bills re on re.seq = s.executed_seq
    left join raw.qbo_bill_payments pe on pe.seq = s.executed_seq
    left join raw.qbo_bill_payments pr on pr.seq = s.recorded_seq
)

select * from final
