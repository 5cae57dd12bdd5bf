#!/bin/bash
set -euo pipefail
cd /app
mkdir -p answers
sqlite3 shop.db "
SELECT printf('%.2f', SUM(oi.quantity * oi.unit_price_cents) / 100.0)
FROM orders o JOIN order_items oi ON oi.order_id = o.id
WHERE o.status IN ('paid', 'shipped')
  AND o.created_at >= '2024-03-01 00:00:00' AND o.created_at < '2024-04-01 00:00:00';" > answers/q1.txt
sqlite3 shop.db "
SELECT c.email || ' ' || printf('%.2f', SUM(oi.quantity * oi.unit_price_cents) / 100.0)
FROM orders o JOIN order_items oi ON oi.order_id = o.id JOIN customers c ON c.id = o.customer_id
WHERE o.status IN ('paid', 'shipped')
GROUP BY c.id ORDER BY SUM(oi.quantity * oi.unit_price_cents) DESC LIMIT 1;" > answers/q2.txt
sqlite3 -csv -header shop.db "
SELECT p.category AS category, COUNT(DISTINCT o.customer_id) AS customers
FROM orders o JOIN order_items oi ON oi.order_id = o.id JOIN products p ON p.id = oi.product_id
WHERE o.status IN ('paid', 'shipped')
GROUP BY p.category ORDER BY customers DESC, category ASC;" | tr -d '\r' > answers/q3.csv
cat answers/*
