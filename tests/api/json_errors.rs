//! Every error is the API's JSON error body, whatever part of the request is wrong (query
//! string, path, route, method), and authentication is checked before anything else.

use serde_json::Value;

use crate::helpers::{spawn_app, TestApp, KEY};

async fn error_of(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
) -> (u16, Value) {
    let mut req = app.http.request(method, app.url(path));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| {
        panic!("{path} answered {status} with a body that is not JSON: {text}")
    });
    assert!(body["error"]["code"].is_string(), "{path}: {body}");
    assert!(body["error"]["message"].is_string(), "{path}: {body}");
    (status, body)
}

#[tokio::test]
async fn query_strings_that_do_not_parse_are_refused_with_a_json_error() {
    let app = spawn_app().await;
    let s = app.start("001099019001", serde_json::json!({})).await;
    let id = s["id"].as_str().expect("id");
    let get = reqwest::Method::GET;
    for path in [
        format!("/v1/signatures/{id}?wait=-1"),
        format!("/v1/signatures/{id}?wait=soon"),
        format!("/v1/signatures/{id}?colour=red"),
        "/v1/signatures?limit=abc".to_owned(),
        "/v1/signatures?status=happy".to_owned(),
        "/v1/certificates?provider=vnpt-smartca".to_owned(),
    ] {
        let (status, body) = error_of(&app, get.clone(), &path, Some(KEY)).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn the_event_stream_authenticates_before_it_reads_its_query() {
    let app = spawn_app().await;
    let get = reqwest::Method::GET;
    let (status, body) = error_of(&app, get.clone(), "/v1/events?after=abc", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    let (status, _) = error_of(
        &app,
        get.clone(),
        "/v1/events?after=abc&ticket=forged",
        None,
    )
    .await;
    assert_eq!(status, 401);
    // Authenticated, the same query is a 400 that says what is wrong, in JSON.
    let (status, body) = error_of(&app, get.clone(), "/v1/events?after=abc", Some(KEY)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("after"),
        "{body}"
    );
    // A plain GET, not a WebSocket handshake, is refused in JSON too.
    let (status, _) = error_of(&app, get, "/v1/events?after=1", Some(KEY)).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = spawn_app().await;
    let (status, body) = error_of(&app, reqwest::Method::GET, "/v1/nothing-here", Some(KEY)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (status, body) = error_of(&app, reqwest::Method::PUT, "/v1/signatures", Some(KEY)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (405, Some("method_not_allowed")),
        "{body}"
    );
    // The 405 still says which methods the route has.
    let resp = app
        .http
        .put(app.url("/v1/signatures"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("send");
    let allow = resp.headers().get("allow").and_then(|v| v.to_str().ok());
    let mut methods: Vec<&str> = allow.unwrap_or_default().split(',').collect();
    methods.sort_unstable();
    assert_eq!(methods, ["GET", "HEAD", "POST"], "{:?}", resp.headers());
    // A path parameter that is not UTF-8 is a JSON 400, not axum's plain text.
    let (status, _) = error_of(
        &app,
        reqwest::Method::GET,
        "/v1/signatures/%FF%FE",
        Some(KEY),
    )
    .await;
    assert_eq!(status, 400);
}
