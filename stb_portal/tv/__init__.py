"""The household pages under /tv."""
