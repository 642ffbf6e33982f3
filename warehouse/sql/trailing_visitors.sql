-- Distinct visitors of one facility per offer in the $weeks weeks up to each week, as a step function: one row
-- per week in which the count changes (offer, week, distinct_visitors); a week between two rows has the count of
-- the earlier one. Used by marts.demand_trends ($weeks = 1: the week itself; the trend window otherwise).
--
-- A visit in week w counts for the windows ending in w … w + $weeks - 1. A visitor's visit weeks that lie less
-- than a window apart merge into one covered run; the count is a running sum of +1 where a run starts and -1 one
-- window after its last week: linear in the visitor-weeks, where matching every window end with every visit
-- grows with their product (it ran out of 24 GB at 10M check-ins).
WITH visitor_weeks AS (
    SELECT DISTINCT offer, visitor_pseudonym, date_trunc('week', visit_date)::DATE AS week
    FROM staging.checkins
    WHERE facility_id = $facility_id
),
run_starts AS (
    SELECT offer, visitor_pseudonym, week,
           coalesce(week - lag(week) OVER visitor > 7 * $weeks, true) AS starts_run
    FROM visitor_weeks
    WINDOW visitor AS (PARTITION BY offer, visitor_pseudonym ORDER BY week)
),
runs AS (
    SELECT offer, visitor_pseudonym, week,
           sum(starts_run::INTEGER) OVER (PARTITION BY offer, visitor_pseudonym ORDER BY week) AS run
    FROM run_starts
),
covered AS (
    SELECT offer, min(week) AS first_week, max(week) AS last_week
    FROM runs
    GROUP BY offer, visitor_pseudonym, run
),
changes AS (
    SELECT offer, first_week AS week, 1 AS change FROM covered
    UNION ALL
    SELECT offer, last_week + 7 * $weeks AS week, -1 AS change FROM covered
)
SELECT $facility_id AS facility_id, offer, week,
       sum(sum(change)) OVER (PARTITION BY offer ORDER BY week)::BIGINT AS distinct_visitors
FROM changes
GROUP BY offer, week
ORDER BY offer, week
