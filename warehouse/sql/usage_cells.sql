-- The cells of the visitor indicators (marts.usage_visitors) of one slice of time, computed where the check-ins
-- are: one row per facility, period ($period: 'week' = ISO week starting Monday, 'month' = calendar month, both of
-- the local visit_date), breakdown and category, with
--   visits             check-ins in the cell,
--   distinct_visitors  different pseudonyms among them,
--   repeat_visitors    pseudonyms that came at least twice within the cell,
--   person_hours       party size (empty: 1) × duration (empty: $default_duration_minutes) / 60, summed.
-- Breakdowns: 'total' (category $all) and per offer, age band and home district (empty value: category $unknown).
-- Only the visits from $first_day up to (not including) $end_day are read; the slice must hold whole periods
-- (warehouse/usage_cells.py cuts the history into whole months and blocks of whole weeks).
-- transforms/usage_indicators.py computes the same cells from a check-in frame (_visitor_cells); the tests compare
-- both. Parameters: $period, $first_day, $end_day, $default_duration_minutes, $unknown, $all.
WITH visits AS (
    SELECT facility_id,
           visitor_pseudonym,
           coalesce(offer, $unknown)         AS offer,
           coalesce(age_band, $unknown)      AS age_band,
           coalesce(home_district, $unknown) AS home_district,
           date_trunc($period, visit_date)::DATE AS period_start,
           coalesce(party_size, 1) * coalesce(duration_minutes, $default_duration_minutes) / 60 AS person_hours
    FROM staging.checkins
    WHERE visit_date >= $first_day AND visit_date < $end_day
),
-- First per visitor, for the four breakdowns in one pass: a column left out of a grouping set is NULL in its rows,
-- which is how the breakdown is told apart below (the values themselves are never NULL).
per_visitor AS (
    SELECT facility_id,
           visitor_pseudonym,
           period_start,
           CASE WHEN grouping(offer) = 0 THEN 'offer'
                WHEN grouping(age_band) = 0 THEN 'age_band'
                WHEN grouping(home_district) = 0 THEN 'home_district'
                ELSE 'total' END AS breakdown,
           coalesce(offer, age_band, home_district, $all) AS category,
           count(*) AS visits,
           sum(person_hours) AS person_hours
    FROM visits
    GROUP BY GROUPING SETS (
        (facility_id, visitor_pseudonym, period_start),
        (facility_id, visitor_pseudonym, period_start, offer),
        (facility_id, visitor_pseudonym, period_start, age_band),
        (facility_id, visitor_pseudonym, period_start, home_district)
    )
)
SELECT facility_id,
       $period AS period,
       period_start,
       breakdown,
       category,
       sum(visits)::BIGINT                     AS visits,
       count(*)                                AS distinct_visitors,
       count(*) FILTER (WHERE visits >= 2)     AS repeat_visitors,
       sum(person_hours)::DOUBLE               AS person_hours
FROM per_visitor
GROUP BY facility_id, period_start, breakdown, category
