"""Running many replicas: what lets a stream continue on another replica."""
