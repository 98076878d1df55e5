-- Charges whose balance transaction is missing from the mirror, or does not carry the charge's amount and currency with net = amount - fee.
with charges as (
    select * from mirror.stripe_charges where paid and balance_transaction_id is not null
),

transactions as (
    select * from mirror.stripe_balance_transactions
),

final as (
    select
        charges.tenant_id,
        charges.stripe_id,
        charges.amount,
        charges.currency,
        charges.balance_transaction_id,
        transactions.amount as transaction_amount,
        transactions.fee,
        transactions.net
    from charges
    left join transactions
        on transactions.tenant_id = charges.tenant_id and transactions.stripe_id = charges.balance_transaction_id
    where transactions.stripe_id is null
        or transactions.amount <> charges.amount
        or transactions.currency <> charges.currency
        or transactions.net <> transactions.amount - transactions.fee
)

select * from final
