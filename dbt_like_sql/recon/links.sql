-- Objects on different rails that are the same money, one row per pair, per tenant: the charge booked as a QBO
-- payment, the payout booked as a deposit and seen at the bank, the payments and bill payments the bank shows, the
-- card spend booked as purchases and batched on a statement the bank pays, the Ramp bill booked in QBO, a bank
-- return and what it returns. `method`: `reference` (an id one rail carries of the
-- other, confidence 1) or `amount_date` (the same amount within a window, and a name where the bank gives one:
-- 0.9 when it is the only candidate either way, else 0.5 and `review`: never guessed). People's decisions
-- (raw.recon_decisions, the latest per link) confirm a link or reject it; a rejected link is not proposed again,
-- and a confirmed one supersedes the other candidates of its objects. `link_id` is stable across runs.
-- config: materialized=tenant_table
-- config: rematch=link_keys

with scope as (  -- the objects lib/rematch.py re-matches, for a tenant it re-matches in part
    select tenant_id, rail, entity_type, entity_id from meta.links_scope
),
keys as (  -- what the objects in scope offer matching: every object, for a tenant matched whole
    select k.* from recon.link_keys k
    where not exists (select 1 from scope s where s.tenant_id = k.tenant_id)
       or exists (select 1 from scope s where s.tenant_id = k.tenant_id and s.rail = k.rail
                  and s.entity_type = k.entity_type and s.entity_id = k.entity_id)
),
candidates as (  -- the pairs sharing a flow, method and key, inside the `from` object's date window if it has one
    select distinct f.tenant_id, f.flow, f.method,
        f.rail as from_rail, f.entity_type as from_type, f.entity_id as from_id, f.amount_minor as from_amount_minor,
        t.rail as to_rail, t.entity_type as to_type, t.entity_id as to_id, t.amount_minor as to_amount_minor
    from keys f
    join keys t on t.tenant_id = f.tenant_id and t.flow = f.flow and t.method = f.method
        and t.match_key = f.match_key and t.side = 'to'
    where f.side = 'from'
      and (f.within_days is null or t.instant between f.instant and f.instant + to_days(f.within_days))
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
