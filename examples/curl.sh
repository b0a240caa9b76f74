#!/usr/bin/env bash
# Plain HTTP against llmrelay: OpenAI and Anthropic protocols, streaming, models, health, metrics.
#   llmrelay serve --demo &   then   LLMRELAY_URL=http://127.0.0.1:4000 bash examples/curl.sh
set -euo pipefail
URL=${LLMRELAY_URL:-http://127.0.0.1:4000}
KEY=${LLMRELAY_KEY:-anything}

echo "== models"
curl -sf "$URL/v1/models" -H "Authorization: Bearer $KEY"; echo

echo "== OpenAI chat completion (headers show provider, cost and cache status)"
curl -sfi "$URL/v1/chat/completions" -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
  -d '{"model": "demo-fast", "messages": [{"role": "user", "content": "Hello from curl"}]}' \
  | grep -iE '^x-llmrelay-|"content"'

echo "== streamed (server-sent events)"
curl -sfN "$URL/v1/chat/completions" -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
  -d '{"model": "demo-fast", "stream": true, "messages": [{"role": "user", "content": "Stream"}]}' | tail -n 3

echo "== Anthropic messages"
curl -sf "$URL/v1/messages" -H "x-api-key: $KEY" -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
  -d '{"model": "demo-claude", "max_tokens": 100, "messages": [{"role": "user", "content": "Hello"}]}'; echo

echo "== health and metrics"
curl -sf "$URL/health/ready"; echo
curl -sf "$URL/metrics" | grep -c '^llmrelay_' >/dev/null && echo "metrics ok"
