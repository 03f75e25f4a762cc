"""X12 readers: 837P professional claims (claims837) and 835 remittances (later)."""
