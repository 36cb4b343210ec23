//! OpenAPI documents, the same way in every service: generated from the operations' types
//! alone (no database, no keys), with what linters and SDK generators expect of a document
//! that poem-openapi leaves out.

use std::collections::HashMap;
use std::marker::PhantomData;

use poem::endpoint::BoxEndpoint;
use poem::http::Method;
use poem_openapi::registry::{MetaApi, Registry};
use poem_openapi::{OpenApi, OpenApiService};
use serde_json::Value;

/// Stands for the API type `T` in a document without an instance of it: a document depends
/// on the operations' types only.
pub struct SpecOnly<T>(PhantomData<fn() -> T>);

impl<T> Default for SpecOnly<T> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T: OpenApi> OpenApi for SpecOnly<T> {
    fn meta() -> Vec<MetaApi> {
        T::meta()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn add_routes(self, _: &mut HashMap<String, HashMap<Method, BoxEndpoint<'static>>>) {}
}

/// What a document says about itself.
pub struct DocumentInfo<'a> {
    pub title: &'a str,
    pub version: &'a str,
    pub description: &'a str,
    /// The server URL clients call (the public base URL).
    pub server: &'a str,
    pub license: &'a str,
    pub license_url: &'a str,
}

/// Applies `info` to a poem-openapi service.
pub fn describe<T: OpenApi>(
    service: OpenApiService<T, ()>,
    info: &DocumentInfo<'_>,
) -> OpenApiService<T, ()> {
    service
        .description(info.description)
        .server(info.server)
        .license(poem_openapi::LicenseObject::new(info.license).url(info.license_url))
}

/// The JSON document of `T` described by `info`, finished by [`finish`].
pub fn document<T: OpenApi>(info: &DocumentInfo<'_>) -> String {
    let service = OpenApiService::new(SpecOnly::<T>::default(), info.title, info.version);
    finish(&describe(service, info).spec())
}

/// Says explicitly that operations without a security requirement are public (`security: []`),
/// as linters ask: an operation that says nothing reads as an oversight.
pub fn finish(spec: &str) -> String {
    let Ok(mut document) = serde_json::from_str::<Value>(spec) else {
        return spec.to_owned();
    };
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for operation in paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|item| item.values_mut())
            .filter_map(Value::as_object_mut)
        {
            operation
                .entry("security")
                .or_insert_with(|| Value::Array(Vec::new()));
        }
    }
    serde_json::to_string_pretty(&document).unwrap_or_else(|_| spec.to_owned())
}

/// Adds `GET /openapi.json` (the finished document `spec`) and `GET /docs` (Swagger UI showing
/// that same document) to a service's `route`.
pub fn with_docs<T: OpenApi>(
    route: poem::Route,
    service: &OpenApiService<T, ()>,
    spec: &str,
) -> poem::Route {
    use poem::get;
    let raw = service.spec();
    let ui = service.swagger_ui_html().replacen(&raw, spec, 1);
    let spec: std::sync::Arc<str> = spec.into();
    let ui: std::sync::Arc<str> = ui.into();
    route
        .at(
            "/openapi.json",
            get(poem::endpoint::make_sync(move |_| {
                poem::Response::builder()
                    .content_type("application/json; charset=utf-8")
                    .body(spec.to_string())
            })),
        )
        .at(
            "/docs",
            get(poem::endpoint::make_sync(move |_| {
                poem::web::Html(ui.to_string())
            })),
        )
}

/// A JSON payload written straight from `T` by serde, where poem-openapi's `Json` first builds
/// a `serde_json::Value` (a map and a string per field): for responses on a hot path. The
/// document is the same as `Json<T>`'s; `T`'s `Serialize` must produce what its `Type` declares
/// (the contract tests check answers against the document).
pub struct SerdeJson<T>(pub T);

impl<T: poem_openapi::types::Type> poem_openapi::payload::Payload for SerdeJson<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn check_content_type(content_type: &str) -> bool {
        <poem_openapi::payload::Json<T> as poem_openapi::payload::Payload>::check_content_type(
            content_type,
        )
    }

    fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: serde::Serialize + Send> poem::IntoResponse for SerdeJson<T> {
    fn into_response(self) -> poem::Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => poem::Response::builder()
                .content_type("application/json; charset=utf-8")
                .body(body),
            Err(err) => {
                tracing::error!(error = %err, "cannot serialize a response");
                poem::Response::builder()
                    .status(poem::http::StatusCode::INTERNAL_SERVER_ERROR)
                    .finish()
            }
        }
    }
}

impl<T: poem_openapi::types::ToJSON + serde::Serialize + Send> poem_openapi::ApiResponse
    for SerdeJson<T>
{
    fn meta() -> poem_openapi::registry::MetaResponses {
        <poem_openapi::payload::Json<T> as poem_openapi::ApiResponse>::meta()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}
