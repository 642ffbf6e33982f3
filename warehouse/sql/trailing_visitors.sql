-- Distinct visitors of one facility per offer in the `weeks` weeks up to each week, for every window length `weeks`
-- in $windows, as a step function: one row per window length and week in which the count changes (weeks, offer, week,
-- distinct_visitors); a week between two rows has the count of the earlier one. Used by marts.demand_trends
-- (1 week: the week itself; the trend window otherwise). Only rows where the count changes (from 0 before the first):
-- the same history always gives the same rows.
--
-- $changed_from (a Monday, or NULL for all of history): only the rows from that week on are right, which is all that
-- an update from a changed week on needs (warehouse.marts_resilience.updated_steps). They depend on the visits from
-- then on and, of those before, only on each visitor's last visit week within the longest window. Only the
-- visitors seen from $changed_from on are sorted; those seen only before are counted per last week (at 100M
-- check-ins the busiest facility had 4.5M of them in the 11 weeks before a delivery, 1.4 s to sort; the 7
-- facilities of a week's delivery took 6.3 s with every visitor-week of the window sorted, 3.0 s now).
--
-- A visit in week w counts for the windows ending in w … w + weeks - 1. A visitor's visit weeks that lie less than
-- a window apart merge into one covered run; the count is a running sum of +1 where a run starts (no visit in the
-- window before) and -1 one window after its last week (no visit in the window after): linear in the
-- visitor-weeks, where matching every window end with every visit grows with their product (it ran out of 24 GB
-- at 10M check-ins). Both neighbours come from one sort of the visitor-weeks, shared by every window length.
WITH weeks_from AS (
    SELECT DISTINCT offer, visitor_pseudonym, date_trunc('week', visit_date)::DATE AS week
    FROM staging.checkins
    WHERE facility_id = $facility_id AND ($changed_from IS NULL OR visit_date >= $changed_from::DATE)
),
last_week_before AS (
    SELECT offer, visitor_pseudonym, max(date_trunc('week', visit_date))::DATE AS week
    FROM staging.checkins
    WHERE facility_id = $facility_id AND visit_date < $changed_from::DATE
      AND visit_date >= $changed_from::DATE - 7 * (list_max($windows::INTEGER[]) - 1)
    GROUP BY offer, visitor_pseudonym
),
visitor_weeks AS (
    SELECT * FROM weeks_from
    UNION ALL
    SELECT * FROM last_week_before SEMI JOIN weeks_from USING (offer, visitor_pseudonym)
),
-- a visitor seen only before $changed_from starts a run in their last week and ends it one window later
only_before AS (
    SELECT offer, week, count(*) AS visitors
    FROM last_week_before ANTI JOIN weeks_from USING (offer, visitor_pseudonym)
    GROUP BY offer, week
),
neighbours AS (
    SELECT offer, week,
           week - lag(week) OVER visitor AS days_since_previous,
           lead(week) OVER visitor - week AS days_until_next
    FROM visitor_weeks
    WINDOW visitor AS (PARTITION BY offer, visitor_pseudonym ORDER BY week)
),
windows AS (
    SELECT unnest($windows::INTEGER[]) AS weeks
),
changes AS (
    SELECT weeks, offer, week, 1 AS change
    FROM neighbours, windows
    WHERE days_since_previous IS NULL OR days_since_previous > 7 * weeks
    UNION ALL
    SELECT weeks, offer, week + 7 * weeks AS week, -1 AS change
    FROM neighbours, windows
    WHERE days_until_next IS NULL OR days_until_next > 7 * weeks
    UNION ALL
    SELECT weeks, offer, week, visitors AS change
    FROM only_before, windows
    UNION ALL
    SELECT weeks, offer, week + 7 * weeks AS week, -visitors AS change
    FROM only_before, windows
),
counts AS (
    SELECT weeks, offer, week, sum(sum(change)) OVER (PARTITION BY weeks, offer ORDER BY week) AS distinct_visitors
    FROM changes
    GROUP BY weeks, offer, week
)
SELECT weeks, $facility_id AS facility_id, offer, week, distinct_visitors::BIGINT AS distinct_visitors
FROM counts
QUALIFY distinct_visitors <> coalesce(lag(distinct_visitors) OVER (PARTITION BY weeks, offer ORDER BY week), 0)
ORDER BY weeks, offer, week
