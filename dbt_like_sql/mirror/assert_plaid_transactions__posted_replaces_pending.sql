-- Posted transactions whose pending twin (pending_transaction_id) is still live in the mirror: Plaid removes the
-- pending one in the sync that adds the posted one, so both live means a removal was lost.
with posted as (
    select * from mirror.plaid_transactions where not pending and pending_transaction_id is not null
),

pending as (
    select * from mirror.plaid_transactions
),

final as (
    select
        posted.tenant_id,
        posted.transaction_id,
        posted.pending_transaction_id,
        posted.amount_cents,
        pending.amount_cents as pending_amount_cents,
        pending.last_synced_at as pending_last_synced_at
    from posted
    inner join pending
        on pending.tenant_id = posted.tenant_id and pending.transaction_id = posted.pending_transaction_id
)

select * from final
