"""The operator console: a web page the service serves itself (README: Console)."""
