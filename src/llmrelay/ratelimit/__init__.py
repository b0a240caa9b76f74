"""Gateway rate limits: token buckets (local or in Redis), and a priority queue with fair sharing
for the requests that have to wait. Used by the ratelimit layer (per key and user) and by the router
(per deployment, so the providers' own 429s are never triggered)."""
