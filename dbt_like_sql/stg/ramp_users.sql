-- Every logged version of every Ramp user (a person with cards), one row per log row.
-- config: materialized=view
-- config: key=user_id
-- config: derive=mirror,history

with log as (
    select * from raw.ramp_users
),

parsed as (
    select
        *,
        json_transform(payload, '{
            "first_name": "JSON", "last_name": "JSON", "email": "JSON", "role": "JSON", "status": "JSON",
            "department_id": "JSON", "location_id": "JSON", "manager_id": "JSON", "business_id": "JSON"
        }') as p
    from log
),

final as (
    select
        tenant_id,
        entity_id as user_id,
        op,
        p.first_name ->> '$' as first_name,
        p.last_name ->> '$' as last_name,
        p.email ->> '$' as email,
        p.role ->> '$' as role,
        p.status ->> '$' as status,
        p.department_id ->> '$' as department_id,
        p.location_id ->> '$' as location_id,
        p.manager_id ->> '$' as manager_id,
        p.business_id ->> '$' as business_id,
        observed_at as last_synced_at,
        source as sync_source,
        seq as log_seq,
        payload_hash
    from parsed
)

select * from final
