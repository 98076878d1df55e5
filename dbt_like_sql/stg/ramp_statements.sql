-- Every logged version of every Ramp card statement, one row per log row. Money in integer minor units as Ramp
-- sends it ({amount, currency_code}); `lines` keeps the statement's lines (JSON) for the lines-sum check.
-- config: materialized=view
-- config: key=statement_id
-- config: derive=mirror,history

with log as (
    select * from raw.ramp_statements
),

parsed as (
    select
        *,
        json_transform(payload, '{
            "start_date": "JSON", "end_date": "JSON", "opening_balance": "JSON", "ending_balance": "JSON",
            "charges": "JSON", "payments": "JSON", "credits": "JSON", "statement_lines": "JSON"
        }') as p
    from log
),

final as (
    select
        tenant_id,
        entity_id as statement_id,
        op,
        try_cast(p.start_date ->> '$' as timestamptz) as start_date,
        try_cast(p.end_date ->> '$' as timestamptz) as end_date,
        json_minor(p.opening_balance -> '$.amount') as opening_balance_cents,
        json_minor(p.ending_balance -> '$.amount') as ending_balance_cents,
        json_minor(p.charges -> '$.amount') as charges_cents,
        json_minor(p.payments -> '$.amount') as payments_cents,
        json_minor(p.credits -> '$.amount') as credits_cents,
        p.charges ->> '$.currency_code' as currency_code,
        p.statement_lines as statement_lines,
        observed_at as last_synced_at,
        source as sync_source,
        seq as log_seq,
        payload_hash
    from parsed
)

select * from final
