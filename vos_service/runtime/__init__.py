"""Stream lifecycle, ingest queues, the scheduler and the worker loop. Imports no grpc."""
