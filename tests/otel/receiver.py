"""An OTLP metrics receiver for tests/outputs_otel.rs, built on the
OpenTelemetry project's own generated classes (PyPI opentelemetry-proto)
and grpcio, so Volley's hand-written encoding is checked by an independent
decoder.

    receiver.py OUT.jsonl

Serves OTLP/HTTP (POST /v1/metrics, protobuf) and OTLP/gRPC
(MetricsService/Export) on two free loopback ports, prints
"http=PORT grpc=PORT" on one line once both listen, and appends every
request received, decoded, as one JSON line
{"transport": ..., "headers": {...}, "request": MessageToDict(...)} to OUT.jsonl. A body that
does not decode is answered 400 (HTTP) or INVALID_ARGUMENT (gRPC) and
recorded as {"transport": ..., "error": ...}. Runs until killed.
"""

import json
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2 as pb,
    metrics_service_pb2_grpc as pb_grpc,
)

OUT = sys.argv[1]
LOCK = threading.Lock()


def record(entry):
    with LOCK, open(OUT, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def decode(transport, body, headers):
    """The request as a dict, or None (recorded as an error)."""
    try:
        req = pb.ExportMetricsServiceRequest.FromString(body)
    except Exception as e:  # any decode failure is the finding
        record({"transport": transport, "error": str(e)})
        return None
    record({"transport": transport, "headers": headers, "request": MessageToDict(req)})
    return req


class Http(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/v1/metrics":
            status = 404
        elif self.headers.get("Content-Type") != "application/x-protobuf":
            record({"transport": "http", "error": "content-type " + str(self.headers.get("Content-Type"))})
            status = 415
        else:
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = 200 if decode("http", body, headers) is not None else 400
        answer = pb.ExportMetricsServiceResponse().SerializeToString() if status == 200 else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


class Metrics(pb_grpc.MetricsServiceServicer):
    def Export(self, request, context):
        headers = {k: v for k, v in context.invocation_metadata()}
        record({"transport": "grpc", "headers": headers, "request": MessageToDict(request)})
        return pb.ExportMetricsServiceResponse()


def main():
    http = ThreadingHTTPServer(("127.0.0.1", 0), Http)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    grpc_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"http={http.server_address[1]} grpc={grpc_port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
