"""The gRPC API: servicer, proto <-> domain conversion, error codes, health, reflection, metrics.

- ``server``: build_server / start_server / graceful_stop / serve_forever.
- ``servicer``, ``stream_call``: the VosService RPCs (transport only).
- ``convert``: proto messages <-> runtime/engine dataclasses.
- ``errors``: domain exceptions -> status codes.
- ``gen``: code generated from protos/vos/v1/vos.proto (protos/generate.sh).

Submodules are not imported here: ``vos_service.api.convert`` and ``gen`` are
light (the client uses them), ``server`` pulls in the runtime.
"""
