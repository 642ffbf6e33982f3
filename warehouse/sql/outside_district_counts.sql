-- Per facility with check-ins on the local dates $first_day … $last_day: its distinct visitors with a known home
-- district (known) and those of them from another district than the facility's (outside). A visitor's home
-- district is the one of their latest check-in at the facility that gave one (people move). The registry's
-- facilities and districts are registered by the caller as registry_facilities (facility_id, area_code); a
-- check-in of another facility is reported before this runs (warehouse.checkin_reads.outside_district_counts_in).
-- transforms.coverage.outside_district_counts counts the same from a check-in frame; tests/test_checkin_reads.py
-- compares both.
WITH per_visitor AS (
    SELECT facility_id,
           visitor_pseudonym,
           arg_max(home_district, visited_at) FILTER (WHERE home_district IS NOT NULL) AS home_district
    FROM staging.checkins
    WHERE visit_date BETWEEN $first_day AND $last_day
    GROUP BY facility_id, visitor_pseudonym
)
SELECT v.facility_id,
       count(v.home_district) FILTER (WHERE v.home_district <> f.area_code) AS outside,
       count(v.home_district) AS known
FROM per_visitor AS v
JOIN registry_facilities AS f USING (facility_id)
GROUP BY v.facility_id
