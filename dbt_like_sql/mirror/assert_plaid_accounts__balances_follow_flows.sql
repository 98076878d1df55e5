-- Balance readings whose change since the account's previous reading is not the sum of the transactions that
-- posted in between. Readings and transactions are compared in log order (accounts are read after transactions in
-- a run): a transaction posted between two readings is one whose first posted version was logged after the first
-- reading and at or before the second. Depository accounts: current falls by the amounts (positive = out); credit
-- accounts: what is owed rises by them. `current` is the posted balance, so pending items need no tolerance;
-- readings without a current balance are not compared.
with readings as (
    select
        tenant_id,
        account_id,
        type,
        log_seq,
        current_cents,
        lag(log_seq) over account_order as previous_seq,
        lag(current_cents) over account_order as previous_cents
    from history.plaid_accounts
    where op <> 'deleted'
    window account_order as (partition by tenant_id, account_id order by log_seq)
),

posted as (
    select
        tenant_id,
        account_id,
        transaction_id,
        min(log_seq) as first_seq,
        arg_min(amount_cents, log_seq) as amount_cents
    from history.plaid_transactions
    where op <> 'deleted' and not pending
    group by all
),

flows as (
    select
        readings.tenant_id,
        readings.account_id,
        any_value(readings.type) as type,
        readings.log_seq,
        any_value(readings.previous_seq) as previous_seq,
        any_value(readings.current_cents) as current_cents,
        any_value(readings.previous_cents) as previous_cents,
        coalesce(sum(posted.amount_cents), 0) as posted_cents,
        count(posted.transaction_id) as posted_transactions
    from readings
    left join posted
        on posted.tenant_id = readings.tenant_id
        and posted.account_id = readings.account_id
        and posted.first_seq > readings.previous_seq
        and posted.first_seq <= readings.log_seq
    where readings.previous_seq is not null and readings.current_cents is not null
        and readings.previous_cents is not null
    group by readings.tenant_id, readings.account_id, readings.log_seq
),

final as (
    select
        *,
        current_cents - previous_cents as balance_change_cents,
        case when type = 'credit' then posted_cents else -posted_cents end as expected_change_cents
    from flows
    where current_cents - previous_cents <> case when type = 'credit' then posted_cents else -posted_cents end
)

select * from final
