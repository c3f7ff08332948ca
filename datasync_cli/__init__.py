"""datasync: move the DataSync Analytics API event stream into PostgreSQL."""

__version__ = "0.1.0"
