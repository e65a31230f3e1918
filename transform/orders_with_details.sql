-- The challenge's final query: every order (Postgres source, schema postgres) as it was on
-- the day, joined with the day's details (CSV source, schema csv). The orders are read
-- through pipeline.as_of (transform/as_of.sql), so the result is the same whichever
-- replication mode orders is read in. Each publish keeps it as the view
-- pipeline.orders_with_details; run it by hand with:
--   psql analytics -c "SELECT * FROM pipeline.orders_with_details WHERE pipeline_date = '2024-01-02'"
-- (the day's filter reaches the days subquery, so one day's orders are read once).
SELECT
    days.pipeline_date,
    o.order_id,
    o.customer_id,
    o.employee_id,
    o.order_date,
    o.required_date,
    o.shipped_date,
    o.ship_via,
    o.freight,
    o.ship_name,
    o.ship_address,
    o.ship_city,
    o.ship_region,
    o.ship_postal_code,
    o.ship_country,
    d.product_id,
    d.unit_price,
    d.quantity,
    d.discount
FROM (SELECT DISTINCT pipeline_date FROM csv.order_details) AS days
CROSS JOIN LATERAL pipeline.as_of(NULL::postgres.orders, days.pipeline_date) AS o
JOIN csv.order_details AS d
    ON d.pipeline_date = days.pipeline_date
    AND d.order_id = o.order_id
