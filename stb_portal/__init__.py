"""The household TV pages (/tv), the staff console (/centre) and the JSON API (/api/v1)."""
