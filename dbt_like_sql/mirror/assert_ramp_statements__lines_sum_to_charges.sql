-- Statements whose card-transaction lines do not add up to the charges Ramp states (integer minor units). A line
-- names its transaction (Ramp's statement lines carry no amount): the sum is of those transactions' amounts.
with statements as (
    select * from mirror.ramp_statements
),

lines as (
    select s.tenant_id, s.statement_id, s.charges_cents, line ->> '$.id' as transaction_id
    from statements s, unnest(cast(s.statement_lines as json[])) as l(line)
    where line ->> '$.type' = 'CARD_TRANSACTION'
),

summed as (
    select s.tenant_id, s.statement_id, s.charges_cents, coalesce(sum(t.amount_cents), 0) as lines_cents
    from statements s
    left join lines l using (tenant_id, statement_id)
    left join mirror.ramp_transactions t on t.tenant_id = l.tenant_id and t.transaction_id = l.transaction_id
    group by all
),

final as (
    select tenant_id, statement_id, charges_cents, lines_cents
    from summed
    where charges_cents is distinct from lines_cents
)

select * from final
