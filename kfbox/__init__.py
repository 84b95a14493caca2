"""kfbox: a local ML platform sandbox and the Critical User Journey as a conformance suite."""

__version__ = "0.1.0"
