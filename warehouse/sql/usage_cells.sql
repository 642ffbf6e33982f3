-- The cells of the visitor indicators (marts.usage_visitors), computed where the check-ins are, so that the
-- pipeline never holds all of staging.checkins in memory: one row per facility, period (ISO week starting Monday,
-- calendar month starting on the 1st, both of the local visit_date), breakdown and category, with
--   visits             check-ins in the cell,
--   distinct_visitors  different pseudonyms among them,
--   repeat_visitors    pseudonyms that came at least twice within the cell,
--   person_hours       party size (empty: 1) × duration (empty: $default_duration_minutes) / 60, summed.
-- Breakdowns: 'total' (category $all) and per offer, age band and home district (empty value: category $unknown).
-- transforms/usage_indicators.py computes the same cells from a check-in frame (_visitor_cells); the tests compare
-- both. Parameters: $default_duration_minutes, $unknown, $all (constants of that module).
WITH visits AS (
    SELECT facility_id,
           visitor_pseudonym,
           coalesce(offer, $unknown)         AS offer,
           coalesce(age_band, $unknown)      AS age_band,
           coalesce(home_district, $unknown) AS home_district,
           date_trunc('week', visit_date)::DATE  AS week_start,
           date_trunc('month', visit_date)::DATE AS month_start,
           coalesce(party_size, 1) * coalesce(duration_minutes, $default_duration_minutes) / 60 AS person_hours
    FROM staging.checkins
),
-- First per visitor, for all eight (period × breakdown) groupings in one pass: a column left out of a grouping
-- set is NULL in its rows, which is how the grouping is told apart below (the values themselves are never NULL).
per_visitor AS (
    SELECT facility_id,
           visitor_pseudonym,
           CASE WHEN grouping(week_start) = 0 THEN 'week' ELSE 'month' END AS period,
           coalesce(week_start, month_start) AS period_start,
           CASE WHEN grouping(offer) = 0 THEN 'offer'
                WHEN grouping(age_band) = 0 THEN 'age_band'
                WHEN grouping(home_district) = 0 THEN 'home_district'
                ELSE 'total' END AS breakdown,
           coalesce(offer, age_band, home_district, $all) AS category,
           count(*) AS visits,
           sum(person_hours) AS person_hours
    FROM visits
    GROUP BY GROUPING SETS (
        (facility_id, visitor_pseudonym, week_start),
        (facility_id, visitor_pseudonym, week_start, offer),
        (facility_id, visitor_pseudonym, week_start, age_band),
        (facility_id, visitor_pseudonym, week_start, home_district),
        (facility_id, visitor_pseudonym, month_start),
        (facility_id, visitor_pseudonym, month_start, offer),
        (facility_id, visitor_pseudonym, month_start, age_band),
        (facility_id, visitor_pseudonym, month_start, home_district)
    )
)
SELECT facility_id,
       period,
       period_start,
       breakdown,
       category,
       sum(visits)::BIGINT                     AS visits,
       count(*)                                AS distinct_visitors,
       count(*) FILTER (WHERE visits >= 2)     AS repeat_visitors,
       sum(person_hours)::DOUBLE               AS person_hours
FROM per_visitor
GROUP BY facility_id, period, period_start, breakdown, category
