//! The OpenAPI 3.1 document of the HTTP/JSON face, derived from the
//! proto's descriptor (the one reflection serves): every message the two
//! operations reach, every field under its JSON name, every enum value, and
//! the error shape. `riskgate openapi` prints it; the copy kept in the
//! repository (`proto/riskgate/v1/riskgate.openapi.json`, served at
//! `/v1/openapi.json`) is checked against it by a test.

use std::collections::BTreeSet;

use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto};
use serde_json::{Map, Value, json};

use crate::api::pb;

const PACKAGE: &str = "riskgate.v1";
const FILE: &str = "riskgate/v1/riskgate.proto";

/// Why the document could not be built (a descriptor this code does not
/// understand: a bug caught by the tests).
#[derive(Debug, thiserror::Error)]
#[error("openapi: {0}")]
pub struct OpenApiError(String);

struct Proto {
    file: FileDescriptorProto,
}

impl Proto {
    fn load() -> Result<Proto, OpenApiError> {
        let set = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET)
            .map_err(|e| OpenApiError(format!("descriptor: {e}")))?;
        let file = set
            .file
            .into_iter()
            .find(|f| f.name() == FILE)
            .ok_or_else(|| OpenApiError(format!("{FILE} is not in the descriptor")))?;
        Ok(Proto { file })
    }

    fn message(&self, name: &str) -> Option<(usize, &DescriptorProto)> {
        self.file
            .message_type
            .iter()
            .enumerate()
            .find(|(_, m)| m.name() == name)
    }

    fn enumeration(&self, name: &str) -> Option<(usize, &EnumDescriptorProto)> {
        self.file
            .enum_type
            .iter()
            .enumerate()
            .find(|(_, e)| e.name() == name)
    }

    /// The leading comment of the element at `path`, as one paragraph per
    /// blank-line-separated block.
    fn comment(&self, path: &[i32]) -> Option<String> {
        let info = self.file.source_code_info.as_ref()?;
        let loc = info.location.iter().find(|l| l.path == path)?;
        let text = loc.leading_comments.as_deref()?;
        let joined = text
            .lines()
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("\n")
            .trim()
            .to_string();
        (!joined.is_empty()).then_some(joined)
    }
}

/// The local name of a type in this package (`.riskgate.v1.Device` →
/// `Device`).
fn local(type_name: &str) -> Option<&str> {
    type_name
        .strip_prefix('.')?
        .strip_prefix(PACKAGE)?
        .strip_prefix('.')
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn nullable(schema: Value) -> Value {
    json!({ "anyOf": [schema, { "type": "null" }] })
}

/// Collects the messages and enums reachable from `root`.
fn reach(
    proto: &Proto,
    root: &str,
    messages: &mut BTreeSet<String>,
    enums: &mut BTreeSet<String>,
) -> Result<(), OpenApiError> {
    if !messages.insert(root.to_string()) {
        return Ok(());
    }
    let (_, m) = proto
        .message(root)
        .ok_or_else(|| OpenApiError(format!("no message {root}")))?;
    for f in &m.field {
        let Some(t) = f.type_name.as_deref() else {
            continue;
        };
        if t == ".google.protobuf.Timestamp" {
            continue;
        }
        let nested_map = m
            .nested_type
            .iter()
            .any(|n| t.ends_with(&format!(".{}", n.name())));
        if nested_map {
            continue;
        }
        let name = local(t).ok_or_else(|| OpenApiError(format!("type {t} is foreign")))?;
        match f.r#type() {
            Type::Enum => {
                enums.insert(name.to_string());
            }
            _ => reach(proto, name, messages, enums)?,
        }
    }
    Ok(())
}

/// The schema of a scalar or referenced type (not repeated).
fn type_schema(f: &prost_types::FieldDescriptorProto) -> Result<Value, OpenApiError> {
    Ok(match f.r#type() {
        Type::String => json!({ "type": "string" }),
        Type::Bool => json!({ "type": "boolean" }),
        Type::Int32 | Type::Sint32 | Type::Sfixed32 => {
            json!({ "type": "integer", "format": "int32" })
        }
        Type::Uint32 | Type::Fixed32 => {
            json!({ "type": "integer", "format": "int64", "minimum": 0, "maximum": 4_294_967_295u64 })
        }
        // 64-bit integers are strings in the proto3 JSON mapping; numbers
        // are accepted too.
        Type::Int64 | Type::Sint64 | Type::Sfixed64 | Type::Uint64 | Type::Fixed64 => {
            json!({ "type": ["string", "integer"], "pattern": "^-?[0-9]+$" })
        }
        Type::Double | Type::Float => json!({ "type": "number" }),
        Type::Bytes => json!({ "type": "string", "contentEncoding": "base64" }),
        Type::Enum | Type::Message => {
            let t = f.type_name();
            if t == ".google.protobuf.Timestamp" {
                json!({ "type": "string", "format": "date-time" })
            } else {
                let name = local(t).ok_or_else(|| OpenApiError(format!("type {t} is foreign")))?;
                schema_ref(name)
            }
        }
        Type::Group => return Err(OpenApiError("groups are not supported".into())),
    })
}

fn message_schema(proto: &Proto, name: &str) -> Result<Value, OpenApiError> {
    let (index, m) = proto
        .message(name)
        .ok_or_else(|| OpenApiError(format!("no message {name}")))?;
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (fi, f) in m.field.iter().enumerate() {
        let path = [4, index as i32, 2, fi as i32];
        let comment = proto.comment(&path);
        // The proto's comments are the contract: "Required." marks the
        // fields the service refuses to go without.
        let is_required = comment
            .as_deref()
            .is_some_and(|c| c.contains("Required.") || c.contains("Required;"));
        let map_entry = m.nested_type.iter().find(|n| {
            n.options.as_ref().is_some_and(|o| o.map_entry())
                && f.type_name().ends_with(&format!(".{}", n.name()))
        });
        let mut schema = if let Some(entry) = map_entry {
            let value = entry
                .field
                .iter()
                .find(|v| v.number() == 2)
                .ok_or_else(|| OpenApiError(format!("map {name}.{} has no value", f.name())))?;
            json!({ "type": "object", "additionalProperties": type_schema(value)? })
        } else if f.label() == Label::Repeated {
            json!({ "type": "array", "items": type_schema(f)? })
        } else if f.r#type() == Type::Message || f.proto3_optional() {
            // A message field or an explicitly optional one may be null.
            nullable(type_schema(f)?)
        } else {
            type_schema(f)?
        };
        if name == "EvaluateRequest" && f.name() == "ip_address" {
            // What the validator accepts, said as JSON Schema can.
            schema = json!({ "type": "string", "anyOf": [ { "format": "ipv4" }, { "format": "ipv6" } ] });
        }
        if is_required {
            required.push(f.json_name().to_string());
            if let Some(obj) = schema.as_object_mut() {
                match f.r#type() {
                    Type::String => {
                        obj.insert("minLength".into(), json!(1));
                    }
                    // The zero value of an enum is its UNSPECIFIED.
                    Type::Enum => {
                        let zero = local(f.type_name())
                            .and_then(|e| proto.enumeration(e))
                            .and_then(|(_, e)| e.value.iter().find(|v| v.number() == 0))
                            .map(|v| v.name().to_string())
                            .ok_or_else(|| {
                                OpenApiError(format!("{name}.{}: no zero value", f.name()))
                            })?;
                        obj.insert("not".into(), json!({ "enum": [zero, 0] }));
                    }
                    _ => {}
                }
            }
        }
        if let (Some(obj), Some(text)) = (schema.as_object_mut(), comment) {
            obj.insert("description".into(), Value::String(text));
        }
        properties.insert(f.json_name().to_string(), schema);
    }
    let mut schema = json!({
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    });
    if !required.is_empty()
        && let Some(obj) = schema.as_object_mut()
    {
        obj.insert("required".into(), json!(required));
    }
    if let (Some(obj), Some(text)) = (schema.as_object_mut(), proto.comment(&[4, index as i32])) {
        obj.insert(
            "description".into(),
            Value::String(format!(
                "{text}\n\nFields may also be sent under their proto names (snake_case)."
            )),
        );
    }
    Ok(schema)
}

fn enum_schema(proto: &Proto, name: &str) -> Result<Value, OpenApiError> {
    let (index, e) = proto
        .enumeration(name)
        .ok_or_else(|| OpenApiError(format!("no enum {name}")))?;
    let names: Vec<&str> = e.value.iter().map(|v| v.name()).collect();
    let numbers: Vec<i32> = e.value.iter().map(|v| v.number()).collect();
    let mut schema = json!({
        "anyOf": [
            { "type": "string", "enum": names },
            { "type": "integer", "enum": numbers, "description": "The value's number, accepted in requests; answers always use names." }
        ]
    });
    if let (Some(obj), Some(text)) = (schema.as_object_mut(), proto.comment(&[5, index as i32])) {
        obj.insert("description".into(), Value::String(text));
    }
    Ok(schema)
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": schema_ref("Error") } }
    })
}

fn retry_response(description: &str) -> Value {
    let mut r = error_response(description);
    if let Some(obj) = r.as_object_mut() {
        obj.insert(
            "headers".into(),
            json!({ "Retry-After": { "description": "Seconds to wait before retrying.", "schema": { "type": "integer" } } }),
        );
    }
    r
}

fn operation(summary: &str, id: &str, request: &str, response: &str, not_found: bool) -> Value {
    let mut responses = Map::new();
    let mut ok = json!({
        "description": "The answer.",
        "content": { "application/json": { "schema": schema_ref(response) } }
    });
    if id == "evaluate"
        && let Some(obj) = ok.as_object_mut()
    {
        // A decision's id is what its outcome is reported against.
        obj.insert(
            "links".into(),
            json!({ "ReportOutcome": {
                "operationId": "reportOutcome",
                "description": "Report what happened after this decision.",
                "requestBody": { "decisionId": "$response.body#/decisionId", "outcome": "OUTCOME_LOGIN_SUCCEEDED" }
            } }),
        );
    }
    responses.insert("200".into(), ok);
    responses.insert(
        "400".into(),
        error_response(
            "The body is not JSON, not this message, or a field is invalid (the message names it).",
        ),
    );
    if not_found {
        responses.insert(
            "404".into(),
            error_response("The decision is unknown or has expired."),
        );
    }
    responses.insert(
        "413".into(),
        error_response("The body is larger than the server accepts."),
    );
    responses.insert(
        "429".into(),
        retry_response("Overloaded: too many calls are waiting."),
    );
    responses.insert(
        "503".into(),
        retry_response("A dependency is unavailable; retry later."),
    );
    responses.insert(
        "504".into(),
        error_response("The deadline (`grpc-timeout` header) passed."),
    );
    json!({
        "summary": summary,
        "operationId": id,
        "parameters": [
            { "name": "x-request-id", "in": "header", "required": false,
              "description": "Labels the call's logs (at most 128 printable ASCII bytes).",
              "schema": { "type": "string" } },
        ],
        "description": "A deadline may be given as gRPC does, in the `grpc-timeout` header (digits and a unit H, M, S, m, u or n, e.g. `200m` for 200 ms); a call that cannot start before it gets 504.",
        "requestBody": {
            "required": true,
            "content": { "application/json": { "schema": schema_ref(request) } }
        },
        "responses": responses,
    })
}

fn status_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": {
            "type": "object",
            "properties": { "status": { "type": "string", "enum": ["SERVING", "NOT_SERVING"] } },
            "required": ["status"]
        } } }
    })
}

/// The document.
pub fn document() -> Result<Value, OpenApiError> {
    let proto = Proto::load()?;
    let mut messages = BTreeSet::new();
    let mut enums = BTreeSet::new();
    for root in [
        "EvaluateRequest",
        "EvaluateResponse",
        "ReportOutcomeRequest",
        "ReportOutcomeResponse",
    ] {
        reach(&proto, root, &mut messages, &mut enums)?;
    }
    let mut schemas = Map::new();
    for m in &messages {
        schemas.insert(m.clone(), message_schema(&proto, m)?);
    }
    for e in &enums {
        schemas.insert(e.clone(), enum_schema(&proto, e)?);
    }
    let codes: Vec<&str> = (0..=16)
        .map(|c| crate::api::http::http_of(tonic::Code::from_i32(c)).1)
        .collect();
    schemas.insert(
        "Error".into(),
        json!({
            "description": "The Google API error shape: the HTTP status, the gRPC code's name, and a message naming the field at fault.",
            "type": "object",
            "properties": { "error": {
                "type": "object",
                "properties": {
                    "code": { "type": "integer" },
                    "status": { "type": "string", "enum": codes },
                    "message": { "type": "string" }
                },
                "required": ["code", "status", "message"]
            } },
            "required": ["error"]
        }),
    );
    Ok(json!({
        "openapi": "3.1.0",
        "info": {
            "title": "riskgate",
            "version": "v1",
            "description": "Risk-based authentication decisions over HTTP/JSON: the proto's `RiskService` in its canonical JSON mapping (lowerCamelCase names, enums by name, timestamps as RFC 3339). The same validation, limits, admission control and deadlines as gRPC, on the same port."
        },
        "paths": {
            "/v1/evaluate": { "post": operation(
                "Decide on a login attempt: ALLOW, STEP_UP (with the factors that satisfy it) or DENY, with reasons.",
                "evaluate", "EvaluateRequest", "EvaluateResponse", false) },
            "/v1/outcomes": { "post": operation(
                "Report what happened after a decision (verified outcomes teach the user's profile).",
                "reportOutcome", "ReportOutcomeRequest", "ReportOutcomeResponse", true) },
            "/healthz": { "get": {
                "summary": "Liveness: the process answers.",
                "operationId": "healthz",
                "responses": { "200": status_response("Alive.") }
            } },
            "/readyz": { "get": {
                "summary": "Readiness: SERVING while the gRPC health says SERVING (not during shutdown).",
                "operationId": "readyz",
                "responses": {
                    "200": status_response("Ready."),
                    "503": status_response("Not ready (shutting down).")
                }
            } },
            "/v1/openapi.json": { "get": {
                "summary": "This document.",
                "operationId": "openapi",
                "responses": { "200": {
                    "description": "The OpenAPI 3.1 document.",
                    "content": { "application/json": { "schema": { "type": "object" } } }
                } }
            } }
        },
        "components": { "schemas": schemas }
    }))
}

/// The document as kept in the repository: pretty JSON and a newline.
pub fn render() -> Result<String, OpenApiError> {
    let doc = document()?;
    let mut s =
        serde_json::to_string_pretty(&doc).map_err(|e| OpenApiError(format!("render: {e}")))?;
    s.push('\n');
    Ok(s)
}
