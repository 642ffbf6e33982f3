-- Rooms with idle capacity within opening hours in districts where the demand projection (variant medium, the
-- first participation scenario) shows a capacity gap in a target year: where shared use could close the gap
-- before anything is built. Bookings are by providers: no visitor counts here.
CREATE TABLE marts.candidate_rooms (
    year                            INTEGER NOT NULL,   -- target year of the projection
    variant                         VARCHAR NOT NULL,
    scenario                        VARCHAR NOT NULL,
    area_code                       VARCHAR NOT NULL,   -- district with the gap
    gap                             DOUBLE NOT NULL,    -- missing places (persons) in that district and year
    facility_id                     VARCHAR NOT NULL,
    room_id                         VARCHAR NOT NULL,
    capacity                        INTEGER,            -- persons the room holds
    weeks                           BIGINT NOT NULL,    -- weeks of bookings the idle time is measured over
    idle_hours_per_week             DOUBLE NOT NULL,    -- opening hours in which nobody had booked the room
    idle_capacity_hours_per_week    DOUBLE              -- idle hours × capacity
);
