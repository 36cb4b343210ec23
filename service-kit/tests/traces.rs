//! Trace export for real: a service with `otlp_endpoint` set sends its spans over OTLP/HTTP
//! (protobuf) to a receiver on a loopback socket; a request carrying a W3C `traceparent` gets a
//! server span in the caller's trace, child of the caller's span, with its request id,
//! operation and status, and the spans opened inside it are its children. One test per file:
//! the subscriber is the process's.

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use poem::http::{Method, StatusCode};
use poem::web::Data;
use poem::{EndpointExt, Response, Route, get, handler, post};
use prost::Message as _;
use service_kit::request::{
    AllowedMethods, BodyLimits, ErrorBody, RequestContext, current_request_id,
};
use service_kit::serve::Listening;
use service_kit::telemetry::{LogFormat, TraceExport, init_telemetry, traces_enabled};

struct TestErrors;

impl ErrorBody for TestErrors {
    fn response(&self, _path: &str, status: StatusCode, detail: &str) -> Response {
        let body = serde_json::json!({ "detail": detail, "requestId": current_request_id() });
        Response::builder()
            .status(status)
            .content_type("application/json")
            .body(body.to_string())
    }
}

/// What the receiver was sent: (service.name, span) for every span.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

#[handler]
async fn receive(body: Vec<u8>, received: Data<&Received>) -> Response {
    let Ok(request) = ExportTraceServiceRequest::decode(body.as_slice()) else {
        return Response::builder().status(StatusCode::BAD_REQUEST).finish();
    };
    let mut received = received.lock().unwrap();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|r| string_attribute(&r.attributes, "service.name"))
            .unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                received.push((service.clone(), span));
            }
        }
    }
    Response::builder()
        .content_type("application/x-protobuf")
        .body(Vec::new())
}

fn string_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            any_value::Value::IntValue(i) => Some(i.to_string()),
            _ => None,
        }
    })
}

#[handler]
async fn work() -> &'static str {
    let span = service_kit::trace_span!("db", otel.name = "SELECT things");
    async {}.await;
    drop(span);
    "done"
}

async fn listen(app: impl poem::Endpoint + 'static) -> String {
    let listening = Listening::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", listening.port());
    tokio::spawn(listening.serve(app, std::future::pending()));
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_with_a_traceparent_is_exported_as_a_child_of_the_callers_span() {
    let received = Received::default();
    let collector = listen(
        Route::new()
            .at("/v1/traces", post(receive))
            .data(received.clone()),
    )
    .await;

    assert!(!traces_enabled(), "off until configured");
    let guard = init_telemetry(
        LogFormat::Text,
        TraceExport::from_setting(Some(&collector), "traces-test"),
    );
    assert!(traces_enabled());

    // Built after init_telemetry: spans on, as in a service.
    let service = listen(
        Route::new()
            .at("/work", get(work))
            .with(RequestContext::new(
                TestErrors,
                BodyLimits::new(1024),
                AllowedMethods::default().with("/work", vec![Method::GET]),
            )),
    )
    .await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let response = reqwest::Client::new()
        .get(format!("{service}/work?secret=hunter2"))
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .header("x-request-id", "traced-1")
        .header("authorization", "Bearer not-for-spans")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Dropping the guard sends what is buffered (it blocks: off the runtime's threads).
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();
    assert!(!traces_enabled());

    let received = received.lock().unwrap();
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let server = received
        .iter()
        .map(|(service, span)| (service, span))
        .find(|(_, span)| {
            string_attribute(&span.attributes, "request_id").as_deref() == Some("traced-1")
        })
        .unwrap_or_else(|| panic!("no span for the request among {} received", received.len()));
    assert_eq!(server.0, "traces-test");
    let server = server.1;
    assert_eq!(hex(&server.trace_id), trace_id);
    assert_eq!(hex(&server.parent_span_id), caller_span);
    assert_eq!(server.name, "GET other");
    assert_eq!(server.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(
        string_attribute(&server.attributes, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        string_attribute(&server.attributes, "url.path").as_deref(),
        Some("/work")
    );

    let child = received
        .iter()
        .find(|(_, span)| span.name == "SELECT things")
        .map(|(_, span)| span)
        .expect("the span opened inside the request");
    assert_eq!(child.trace_id, server.trace_id);
    assert_eq!(child.parent_span_id, server.span_id);

    // Neither the query string nor any header reaches an exported span.
    let everything = format!("{:?}", *received);
    for secret in ["hunter2", "not-for-spans", "Bearer"] {
        assert!(!everything.contains(secret), "{secret} was exported");
    }
}
