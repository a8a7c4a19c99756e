//! The HTTP edge: CORS on the Engine.IO path, `[[static]]` mounts, and the client bundle.

use std::path::Path;

use bytes::Bytes;
use http::Method;
use switchboard::app::load_routes;
use switchboard::server::ClientBundle;

use crate::support::server::compile;
use crate::support::{Polling, Reply, TempDir, assert_error, get, request, start, start_with};

// --- CORS -------------------------------------------------------------------------------

const CORS: &str = r#"[server]
cors = { origins = ["http://a.test"], credentials = true }
"#;

const HANDSHAKE: &str = "/socket.io/?EIO=4&transport=polling";

async fn get_from(addr: std::net::SocketAddr, target: &str, origin: &str) -> Reply {
    request(
        addr,
        Method::GET,
        target,
        &[("origin", origin)],
        Bytes::new(),
    )
    .await
}

fn access_control_headers(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

#[tokio::test]
async fn cors_handshake_from_an_allowed_origin_gets_origin_and_credentials() {
    let server = start(CORS).await;
    let reply = get_from(server.addr, HANDSHAKE, "http://a.test").await;
    assert_eq!(reply.status, 200);
    assert!(reply.text().starts_with("0{"));
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("http://a.test")
    );
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(reply.header("vary"), Some("Origin"));
}

#[tokio::test]
async fn cors_other_origins_are_not_allowed() {
    let server = start(CORS).await;
    let reply = get_from(server.addr, HANDSHAKE, "http://evil.test").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn cors_preflight_answers_204_with_methods_and_asked_headers() {
    let server = start(CORS).await;
    let reply = request(
        server.addr,
        Method::OPTIONS,
        HANDSHAKE,
        &[
            ("origin", "http://a.test"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type"),
        ],
        Bytes::new(),
    )
    .await;
    assert_eq!((reply.status.as_u16(), reply.text()), (204, ""));
    assert_eq!(
        reply.header("access-control-allow-methods"),
        Some("GET,HEAD,PUT,PATCH,POST,DELETE")
    );
    assert_eq!(
        reply.header("access-control-allow-headers"),
        Some("content-type")
    );
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("http://a.test")
    );
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
}

#[tokio::test]
async fn cors_headers_are_on_session_requests_and_errors_too() {
    let server = start(CORS).await;
    let p = Polling::open(server.addr).await;
    let post = request(
        server.addr,
        Method::POST,
        &p.target(),
        &[("origin", "http://a.test")],
        "40",
    )
    .await;
    assert_eq!((post.status.as_u16(), post.text()), (200, "ok"));
    assert_eq!(
        post.header("access-control-allow-origin"),
        Some("http://a.test")
    );

    let error = get_from(
        server.addr,
        "/socket.io/?EIO=4&transport=tobi",
        "http://a.test",
    )
    .await;
    assert_error(&error, 400, 0, "Transport unknown");
    assert_eq!(
        error.header("access-control-allow-origin"),
        Some("http://a.test")
    );
}

#[tokio::test]
async fn cors_wildcard_without_credentials_allows_any_origin() {
    let server = start("[server]\ncors = { origins = [\"*\"] }\n").await;
    let reply = get_from(server.addr, HANDSHAKE, "http://anywhere.test").await;
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert_eq!(reply.header("access-control-allow-credentials"), None);
}

#[tokio::test]
async fn without_cors_no_access_control_headers_are_sent() {
    let server = start("").await;
    let reply = get_from(server.addr, HANDSHAKE, "http://a.test").await;
    assert_eq!(reply.status, 200);
    assert_eq!(access_control_headers(&reply), Vec::<String>::new());

    // No preflight either: OPTIONS is just a handshake with the wrong method.
    let reply = request(
        server.addr,
        Method::OPTIONS,
        HANDSHAKE,
        &[("origin", "http://a.test")],
        Bytes::new(),
    )
    .await;
    assert_error(&reply, 400, 2, "Bad handshake method");
    assert_eq!(access_control_headers(&reply), Vec::<String>::new());
}

// --- Static files -----------------------------------------------------------------------

const INDEX: &str = "<!doctype html><title>switchboard test</title>\n";

/// A folder with routes.toml, `public/` to serve, and files and links that must stay out.
fn site() -> TempDir {
    let dir = TempDir::new("static");
    dir.write(
        "routes.toml",
        r#"
[[static]]
mount = "/"
dir = "public"
index = "index.html"

[[static]]
mount = "/assets"
dir = "public"
"#,
    );
    dir.write("Cargo.toml", "[package]\nname = \"outside\"\n");
    dir.write("secret.txt", "outside the mount");
    dir.write("public/index.html", INDEX);
    dir.write("public/app.js", "console.log(1);\n");
    dir.write("public/docs/index.html", "<p>docs</p>");
    dir.write("public/data.bin", [0u8, 1, 2]);
    let public = dir.path().join("public");
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), public.join("leak.txt"))
        .expect("symlink");
    std::os::unix::fs::symlink(dir.path(), public.join("up")).expect("symlink");
    std::os::unix::fs::symlink(public.join("app.js"), public.join("alias.js")).expect("symlink");
    dir
}

async fn start_site(dir: &Path) -> crate::support::TestServer {
    let routes = load_routes(&dir.join("routes.toml")).expect("routes compile");
    start_with(routes, None).await
}

#[tokio::test]
async fn static_root_serves_the_index_as_html() {
    let dir = site();
    let server = start_site(dir.path()).await;
    for target in ["/", "/index.html"] {
        let reply = get(server.addr, target).await;
        assert_eq!(
            (reply.status.as_u16(), reply.text()),
            (200, INDEX),
            "{target}"
        );
        assert_eq!(
            reply.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(reply.header("etag").is_some());
        assert!(reply.header("last-modified").is_some());
    }
    let docs = get(server.addr, "/docs/").await;
    assert_eq!((docs.status.as_u16(), docs.text()), (200, "<p>docs</p>"));
}

#[tokio::test]
async fn static_files_get_their_content_type() {
    let dir = site();
    let server = start_site(dir.path()).await;
    let js = get(server.addr, "/app.js").await;
    assert_eq!(
        (js.status.as_u16(), js.header("content-type")),
        (200, Some("text/javascript; charset=utf-8"))
    );
    let bin = get(server.addr, "/data.bin").await;
    assert_eq!(bin.header("content-type"), Some("application/octet-stream"));
    assert_eq!(&bin.body[..], [0, 1, 2]);
}

#[tokio::test]
async fn static_mounts_are_tried_in_order_and_match_whole_segments() {
    let dir = site();
    let server = start_site(dir.path()).await;
    let reply = get(server.addr, "/assets/app.js").await;
    assert_eq!(
        (reply.status.as_u16(), reply.text()),
        (200, "console.log(1);\n")
    );
    assert_eq!(get(server.addr, "/assetsapp.js").await.status, 404);
    // `/assets` has no index file: a folder there is not found.
    assert_eq!(get(server.addr, "/assets/docs/").await.status, 404);
}

#[tokio::test]
async fn static_paths_cannot_climb_out_of_the_folder() {
    let dir = site();
    let server = start_site(dir.path()).await;
    for target in [
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/%2E%2E%2FCargo.toml",
        "/docs/../../Cargo.toml",
        "/assets/../Cargo.toml",
        "/..%5cCargo.toml",
        "/leak.txt",
        "/up/Cargo.toml",
        "/up/secret.txt",
    ] {
        let reply = get(server.addr, target).await;
        assert_eq!(
            (reply.status.as_u16(), reply.text()),
            (404, ""),
            "{target} must not be served"
        );
    }
    // A link that stays inside is fine.
    assert_eq!(get(server.addr, "/alias.js").await.status, 200);
}

#[tokio::test]
async fn static_missing_files_and_other_methods_are_404() {
    let dir = site();
    let server = start_site(dir.path()).await;
    assert_eq!(get(server.addr, "/nope.html").await.status, 404);
    let post = request(server.addr, Method::POST, "/index.html", &[], "x").await;
    assert_eq!(post.status, 404);
}

#[tokio::test]
async fn static_etag_answers_304_to_if_none_match() {
    let dir = site();
    let server = start_site(dir.path()).await;
    let first = get(server.addr, "/app.js").await;
    let etag = first.header("etag").expect("an ETag").to_owned();
    for tag in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
    ] {
        let reply = request(
            server.addr,
            Method::GET,
            "/app.js",
            &[("if-none-match", &tag)],
            Bytes::new(),
        )
        .await;
        assert_eq!((reply.status.as_u16(), reply.text()), (304, ""), "{tag}");
        assert_eq!(reply.header("etag"), Some(etag.as_str()));
    }
    let stale = request(
        server.addr,
        Method::GET,
        "/app.js",
        &[("if-none-match", "\"stale\"")],
        Bytes::new(),
    )
    .await;
    assert_eq!(stale.status, 200);

    let since = first.header("last-modified").expect("Last-Modified");
    let reply = request(
        server.addr,
        Method::GET,
        "/app.js",
        &[("if-modified-since", since)],
        Bytes::new(),
    )
    .await;
    assert_eq!((reply.status.as_u16(), reply.text()), (304, ""));
}

#[tokio::test]
async fn static_head_has_headers_and_no_body() {
    let dir = site();
    let server = start_site(dir.path()).await;
    let reply = request(server.addr, Method::HEAD, "/", &[], Bytes::new()).await;
    assert_eq!((reply.status.as_u16(), reply.text()), (200, ""));
    assert_eq!(
        reply.header("content-length"),
        Some(INDEX.len().to_string().as_str())
    );
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
}

#[tokio::test]
async fn static_mount_does_not_shadow_the_engine_path() {
    let dir = site();
    let server = start_site(dir.path()).await;
    Polling::open(server.addr).await;
}

// --- Client bundle ----------------------------------------------------------------------

/// What `socket.io-client` ships in `dist/`; a bundle needs all of them.
use switchboard::server::CLIENT_FILES as FILES;

/// A fake `socket.io-client` package, version 9.9.9.
fn client_package() -> TempDir {
    let dir = TempDir::new("client");
    dir.write(
        "socket.io-client/package.json",
        r#"{"name":"socket.io-client","version":"9.9.9"}"#,
    );
    for name in FILES {
        dir.write(
            &format!("socket.io-client/dist/{name}"),
            format!("/* {name} */"),
        );
    }
    dir
}

async fn start_with_bundle(routes: &str, package: &TempDir) -> crate::support::TestServer {
    let bundle = ClientBundle::find(&[package.path().join("socket.io-client")]).expect("bundle");
    assert_eq!(bundle.version(), "9.9.9");
    start_with(compile(routes, package.path()), Some(bundle)).await
}

#[tokio::test]
async fn client_bundle_is_served_with_the_package_version_as_etag() {
    let package = client_package();
    let server = start_with_bundle("", &package).await;
    let reply = get(server.addr, "/socket.io/socket.io.js").await;
    assert_eq!(
        (reply.status.as_u16(), reply.text()),
        (200, "/* socket.io.js */")
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/javascript; charset=utf-8")
    );
    assert_eq!(reply.header("etag"), Some("\"9.9.9\""));
    assert_eq!(reply.header("cache-control"), Some("public, max-age=0"));

    let map = get(server.addr, "/socket.io/socket.io.min.js.map").await;
    assert_eq!(
        (map.status.as_u16(), map.header("content-type")),
        (200, Some("application/json; charset=utf-8"))
    );

    // The msgpack bundle speaks a parser this server does not: not served, and said why.
    let msgpack = get(server.addr, "/socket.io/socket.io.msgpack.min.js").await;
    assert_eq!(msgpack.status, 404);
    assert!(
        msgpack.text().contains("default parser"),
        "{}",
        msgpack.text()
    );
}

#[tokio::test]
async fn client_bundle_answers_304_to_its_etag() {
    let package = client_package();
    let server = start_with_bundle("", &package).await;
    for tag in ["\"9.9.9\"", "W/\"9.9.9\""] {
        let reply = request(
            server.addr,
            Method::GET,
            "/socket.io/socket.io.min.js",
            &[("if-none-match", tag)],
            Bytes::new(),
        )
        .await;
        assert_eq!((reply.status.as_u16(), reply.text()), (304, ""), "{tag}");
        assert_eq!(reply.header("etag"), Some("\"9.9.9\""));
    }
}

#[tokio::test]
async fn client_bundle_can_be_found_from_its_dist_folder() {
    let package = client_package();
    let bundle = ClientBundle::find(&[
        package.path().join("missing"),
        package.path().join("socket.io-client/dist"),
    ])
    .expect("found through dist");
    assert_eq!(bundle.version(), "9.9.9");
    let missing = ClientBundle::find(&[package.path().join("missing")]).unwrap_err();
    assert!(missing.to_string().contains("not found"), "{missing}");
}

#[tokio::test]
async fn a_missing_client_bundle_answers_404_saying_to_run_npm_ci() {
    let server = start_with(compile("", Path::new(".")), None).await;
    let reply = get(server.addr, "/socket.io/socket.io.min.js").await;
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.headers[http::header::CONTENT_TYPE],
        "text/plain; charset=utf-8"
    );
    let text = String::from_utf8_lossy(&reply.body);
    assert!(text.contains("Run `npm ci`"), "{text}");
    // The engine still answers its own requests.
    Polling::open(server.addr).await;
}

#[tokio::test]
async fn client_bundle_is_not_served_when_serve_client_is_off() {
    let package = client_package();
    let server = start_with_bundle("[server]\nserve_client = false\n", &package).await;
    let reply = get(server.addr, "/socket.io/socket.io.js").await;
    assert_error(&reply, 400, 0, "Transport unknown");
}

#[tokio::test]
async fn custom_path_moves_the_engine_and_the_bundle() {
    let package = client_package();
    let server = start_with_bundle("[server]\npath = \"/rt/\"\n", &package).await;
    assert_eq!(get(server.addr, "/rt/socket.io.js").await.status, 200);
    Polling::open_at(server.addr, "/rt/").await;
    assert_eq!(
        get(server.addr, "/socket.io/socket.io.js").await.status,
        404
    );
    assert_eq!(get(server.addr, HANDSHAKE).await.status, 404);
}
