-- The business's customers and vendors as each rail knows them, per tenant, with a name normalised for matching
-- across rails (lower case, letters and digits only, a company suffix dropped) and the counterpart a rail names on
-- another (a Stripe customer's QBO customer, a Ramp vendor's QBO vendor).
-- config: materialized=tenant_table

with parties as (
    select tenant_id, 'qbo' as rail, 'Customer' as entity_type, qbo_id as entity_id, 'customer' as role,
        display_name as name, email, null as qbo_id, log_seq
    from mirror.qbo_customers
    union all
    select tenant_id, 'qbo', 'Vendor', qbo_id, 'vendor', display_name, email, null, log_seq
    from mirror.qbo_vendors
    union all
    select tenant_id, 'stripe', 'customer', stripe_id, 'customer', name, email, qbo_customer_id, log_seq
    from mirror.stripe_customers where not coalesce(deleted, false)
    union all
    select tenant_id, 'ramp', 'vendor', vendor_id, 'vendor', name, null, remote_id, log_seq
    from mirror.ramp_vendors
),

final as (
    select tenant_id, rail, entity_type, entity_id, role, name,
        regexp_replace(regexp_replace(lower(coalesce(name, '')), '[^a-z0-9 ]', '', 'g'),
                       ' (inc|llc|ltd|co|corp|company)$', '') as normalized_name,
        email, qbo_id as qbo_counterpart_id, log_seq
    from parties
)

select * from final
