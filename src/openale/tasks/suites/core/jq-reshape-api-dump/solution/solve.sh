#!/bin/bash
set -euo pipefail
cd /app
jq '
  .meta.fx_to_usd as $fx
  | [.pages[].data.customers[]] | unique_by(.id)
  | map({
      country: ((.profile.address.country // null) | if . == null then "unknown" else ascii_upcase end),
      orders: [.orders[] | select(.status == "completed" or .status == "shipped")]
    })
  | map(select(.orders | length > 0))
  | group_by(.country)
  | map({
      country: .[0].country,
      customers: length,
      orders: (map(.orders | length) | add),
      revenue_usd: ([.[].orders[].lines[] | .qty * .unit_price.amount_cents / 100 * $fx[.unit_price.currency]]
                    | add * 100 | round / 100),
      top_sku: ([.[].orders[].lines[]] | group_by(.sku)
                | map({sku: .[0].sku, q: (map(.qty) | add)})
                | sort_by(-.q, .sku) | .[0].sku)
    })
  | sort_by(-.revenue_usd, .country)
  | {countries: .}
' data/api_dump.json > summary.json
cat summary.json
