-- The challenge's final query: every order (Postgres source, schema postgres) joined with
-- its details (CSV source, schema csv), per day. Each publish keeps it as the view
-- pipeline.orders_with_details; run it by hand with:
--   psql analytics -c "SELECT * FROM pipeline.orders_with_details WHERE pipeline_date = '2024-01-02'"
SELECT
    o.pipeline_date,
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
FROM postgres.orders AS o
JOIN csv.order_details AS d
    ON d.pipeline_date = o.pipeline_date
    AND d.order_id = o.order_id
