"""Server reflection answers a client that knows only grpc.reflection.v1 (and v1alpha ones still)."""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.api.harness import run, serving
from vos_service.api.reflection import V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME, v1_file_descriptor


def _v1_messages():
    """v1 request/response classes in a pool of their own: the client shares nothing with the server."""
    pool = descriptor_pool.DescriptorPool()
    pool.Add(v1_file_descriptor())
    get = lambda name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name))  # noqa: E731
    return get("grpc.reflection.v1.ServerReflectionRequest"), get("grpc.reflection.v1.ServerReflectionResponse")


def test_a_v1_only_client_lists_and_describes_the_services():
    request, response = _v1_messages()

    async def scenario():
        async with serving() as s:
            info = s.client.channel.stream_stream(f"/{V1_SERVICE_NAME}/ServerReflectionInfo",
                                                  request_serializer=request.SerializeToString,
                                                  response_deserializer=response.FromString)
            asked = [request(list_services=""), request(file_containing_symbol="vos.v1.VosService"),
                     request(file_containing_symbol=V1_SERVICE_NAME)]
            answers = [r async for r in info(iter(asked))]
            names = {svc.name for svc in answers[0].list_services_response.service}
            assert {"vos.v1.VosService", "grpc.health.v1.Health", V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME} <= names
            for answer, symbol in zip(answers[1:], ("vos.v1.VosService", V1_SERVICE_NAME)):
                assert not answer.HasField("error_response"), symbol
                files = [descriptor_pb2.FileDescriptorProto.FromString(b)
                         for b in answer.file_descriptor_response.file_descriptor_proto]
                assert any(symbol.rpartition(".")[2] in {svc.name for svc in f.service} for f in files), symbol

            # The v1alpha protocol still answers, with the same list.
            old = reflection_pb2_grpc.ServerReflectionStub(s.client.channel).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
            assert {svc.name async for r in old for svc in r.list_services_response.service} == names

    run(scenario())
