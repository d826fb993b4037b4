"""The staff console (`/centre`)."""
