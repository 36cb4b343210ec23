"""A small OTLP/HTTP trace receiver for tests/gateway/run.sh, on the standard protobuf
definitions (opentelemetry-proto from PyPI).

    python otlp_receiver.py PORT_FILE SPANS_FILE

Listens on 127.0.0.1 (a free port, written to PORT_FILE once listening), accepts
`POST /v1/traces` with an `application/x-protobuf` ExportTraceServiceRequest, answers with an
ExportTraceServiceResponse, and appends one JSON object per span to SPANS_FILE:
{"service", "trace_id", "span_id", "parent_span_id", "name", "kind", "status",
"attributes": {key: value}, "events": [{"name", "attributes"}]} (ids in lower-case hex).
Anything else is answered 404/415/400. Stops on SIGTERM.
"""

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

LOCK = threading.Lock()


def value_of(any_value):
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    value = getattr(any_value, kind)
    if kind == "array_value":
        return [value_of(v) for v in value.values]
    if kind == "kvlist_value":
        return {kv.key: value_of(kv.value) for kv in value.values}
    if kind == "bytes_value":
        return value.hex()
    return value


def attributes(key_values):
    return {kv.key: value_of(kv.value) for kv in key_values}


class Handler(BaseHTTPRequestHandler):
    spans_file = None

    def do_POST(self):
        if self.path != "/v1/traces":
            return self.answer(404, b"")
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/x-protobuf":
            return self.answer(415, b"")
        length = int(self.headers.get("Content-Length", "0"))
        request = trace_service_pb2.ExportTraceServiceRequest()
        try:
            request.ParseFromString(self.rfile.read(length))
        except Exception:  # noqa: BLE001 - a malformed body is the sender's bug: say 400
            return self.answer(400, b"")
        lines = []
        for resource_spans in request.resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    lines.append(
                        json.dumps(
                            {
                                "service": resource.get("service.name"),
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent_span_id": span.parent_span_id.hex(),
                                "name": span.name,
                                "kind": trace_pb2.Span.SpanKind.Name(span.kind),
                                "status": trace_pb2.Status.StatusCode.Name(span.status.code),
                                "attributes": attributes(span.attributes),
                                "events": [
                                    {"name": e.name, "attributes": attributes(e.attributes)}
                                    for e in span.events
                                ],
                            }
                        )
                    )
        with LOCK, open(self.spans_file, "a", encoding="utf-8") as out:
            for line in lines:
                out.write(line + "\n")
        body = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.answer(200, body, "application/x-protobuf")

    def answer(self, status, body, content_type="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    port_file, spans_file = sys.argv[1], sys.argv[2]
    Handler.spans_file = spans_file
    open(spans_file, "w", encoding="utf-8").close()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    with open(port_file + ".tmp", "w", encoding="utf-8") as out:
        out.write(str(server.server_address[1]))
    os.replace(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
