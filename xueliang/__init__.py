"""Xueliang: public-safety and community services on the cable-TV set-top box."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("xueliang")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
