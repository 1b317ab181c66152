"""detreduce: reduce detection training sets and measure what it costs."""

__version__ = "0.1.0"
