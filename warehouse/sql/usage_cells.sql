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
-- visits is read twice (per_visitor, marked_visits): NOT MATERIALIZED scans the slice twice rather than handing its
-- rows on to two readers, which cost more than the scan (two months of 10M: 0.70 → 0.62 s).
WITH visits AS NOT MATERIALIZED (
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
-- Each visitor's visits to the facility in the period: the 'total' breakdown counts these.
per_visitor AS (
    SELECT facility_id, visitor_pseudonym, period_start, count(*) AS visits, sum(person_hours) AS person_hours
    FROM visits
    GROUP BY facility_id, visitor_pseudonym, period_start
),
-- Someone who came once in the period is one visitor, with one visit, in the category of that visit in every
-- breakdown; only the visits of those who came again need grouping per visitor and category. Most visits of a week
-- are their visitor's only one there (73 % in the benchmark's data, 40 % of a month's): this halves the time of a
-- week, and with regulars only it costs what grouping every visit per visitor and category did (BENCHMARKS.md).
came_again AS (
    SELECT facility_id, visitor_pseudonym, period_start FROM per_visitor WHERE visits >= 2
),
-- regular: the pseudonym of a visitor who came again, NULL for a single visit, so that grouping by it puts all single
-- visits of a category into one row and each regular into a row of their own.
marked_visits AS (
    SELECT visits.*, came_again.visitor_pseudonym AS regular
    FROM visits LEFT JOIN came_again USING (facility_id, visitor_pseudonym, period_start)
),
-- The three breakdowns in one pass: a column left out of a grouping set is NULL in its rows, which is how the
-- breakdown is told apart (the values themselves are never NULL).
per_category AS (
    SELECT facility_id,
           period_start,
           regular,
           CASE WHEN grouping(offer) = 0 THEN 'offer'
                WHEN grouping(age_band) = 0 THEN 'age_band'
                ELSE 'home_district' END AS breakdown,
           coalesce(offer, age_band, home_district) AS category,
           count(*) AS visits,
           sum(person_hours) AS person_hours
    FROM marked_visits
    GROUP BY GROUPING SETS (
        (facility_id, period_start, regular, offer),
        (facility_id, period_start, regular, age_band),
        (facility_id, period_start, regular, home_district)
    )
)
SELECT facility_id, $period AS period, period_start, 'total' AS breakdown, $all AS category,
       sum(visits)::BIGINT                     AS visits,
       count(*)                                AS distinct_visitors,
       count(*) FILTER (WHERE visits >= 2)     AS repeat_visitors,
       sum(person_hours)::DOUBLE               AS person_hours
FROM per_visitor
GROUP BY facility_id, period_start
UNION ALL
SELECT facility_id, $period, period_start, breakdown, category,
       sum(visits)::BIGINT,
       sum(CASE WHEN regular IS NULL THEN visits ELSE 1 END)::BIGINT,  -- each single visit: a visitor of its own
       count(*) FILTER (WHERE regular IS NOT NULL AND visits >= 2),
       sum(person_hours)::DOUBLE
FROM per_category
GROUP BY facility_id, period_start, breakdown, category
